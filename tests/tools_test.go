package tests

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func sfdisk(path, script string) *exec.Cmd {
	cmd := exec.Command("sfdisk", "-q", path)
	cmd.Stdin = strings.NewReader(script)
	return cmd
}

// partOffsets asks sfdisk (not our reader) where each partition starts.
func partOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	out := run(t, "sfdisk", "--json", path)
	var v struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64 `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	ss := v.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	var offs []int64
	for _, p := range v.PartitionTable.Partitions {
		offs = append(offs, p.Start*ss)
	}
	return offs
}

// placeImage copies a file system image into a disk at off, keeping holes.
func placeImage(t testing.TB, disk, fsimg string, off int64) {
	t.Helper()
	src, err := os.Open(fsimg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; pos += int64(len(buf)) {
		n, err := io.ReadFull(src, buf)
		if n > 0 && string(buf[:n]) != string(zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], off+pos); werr != nil {
				t.Fatal(werr)
			}
		}
		if err != nil {
			break
		}
	}
}
