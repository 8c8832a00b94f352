package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"
	"unicode/utf16"
)

// maxGPTEntries bounds the entry array we read (the spec's minimum is 128;
// real tables never exceed a few thousand).
const maxGPTEntries = 4096

func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	var lastErr error
	for _, sector := range []int64{512, 4096} {
		t, err := readGPTAt(r, size, sector)
		if err == nil {
			return t, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func readGPTAt(r io.ReaderAt, size, ss int64) (*Table, error) {
	h := make([]byte, 92)
	if _, err := r.ReadAt(h, ss); err != nil {
		return nil, fmt.Errorf("reading GPT header: %w", err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, fmt.Errorf("GPT header signature missing (sector size %d): %w", ss, ErrCorrupt)
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || int64(hsize) > ss {
		return nil, fmt.Errorf("GPT header size %d: %w", hsize, ErrCorrupt)
	}
	full := make([]byte, hsize)
	if _, err := r.ReadAt(full, ss); err != nil {
		return nil, fmt.Errorf("reading GPT header: %w", err)
	}
	want := binary.LittleEndian.Uint32(full[16:])
	binary.LittleEndian.PutUint32(full[16:], 0)
	if crc32.ChecksumIEEE(full) != want {
		return nil, fmt.Errorf("GPT header checksum mismatch: %w", ErrCorrupt)
	}
	entLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	n := binary.LittleEndian.Uint32(h[80:])
	esz := binary.LittleEndian.Uint32(h[84:])
	if n > maxGPTEntries || esz < 128 || esz > 4096 || entLBA*ss+int64(n)*int64(esz) > size {
		return nil, fmt.Errorf("GPT entry array (%d entries of %d bytes at LBA %d) is out of bounds: %w", n, esz, entLBA, ErrCorrupt)
	}
	ents := make([]byte, int(n)*int(esz))
	if _, err := r.ReadAt(ents, entLBA*ss); err != nil {
		return nil, fmt.Errorf("reading GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(ents) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, fmt.Errorf("GPT entry array checksum mismatch: %w", ErrCorrupt)
	}
	t := &Table{Kind: "gpt", DiskID: guidString(h[56:72])}
	for i := 0; i < int(n); i++ {
		e := ents[i*int(esz):][:esz]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		last := int64(binary.LittleEndian.Uint64(e[40:]))
		if last < first || (last+1)*ss > size {
			return nil, fmt.Errorf("GPT partition %d spans LBA %d-%d, outside the disk: %w", i+1, first, last, ErrCorrupt)
		}
		typ := guidString(e[:16])
		t.Partitions = append(t.Partitions, Partition{
			Number: i + 1, TypeID: typ, Type: gptTypeName(typ), GUID: guidString(e[16:32]),
			Name: utf16Name(e[56:128]), Start: first * ss, Size: (last - first + 1) * ss,
		})
	}
	return t, nil
}

// guidString formats a mixed-endian GUID as Windows and sfdisk print it.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

var gptTypes = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI system",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery environment",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
}

func gptTypeName(g string) string {
	if s, ok := gptTypes[strings.ToUpper(g)]; ok {
		return s
	}
	return "unknown (" + g + ")"
}

func sortByNumber(p []Partition) {
	sort.Slice(p, func(i, j int) bool { return p[i].Number < p[j].Number })
}
