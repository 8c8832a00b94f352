package vhdx

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/offvm/offvm/vdisk"
)

const (
	regionOffset1   = 192 * kib
	regionOffset2   = 256 * kib
	regionTableSize = 64 * kib
	maxRegions      = 2047
)

var (
	batRegionGUID      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	metadataRegionGUID = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
)

const unknownRegion = "required region"

// region is where the BAT or the metadata lives in the file.
type region struct {
	offset int64
	length int64
}

// readRegions finds the BAT and metadata regions from the first valid
// region table copy ([MS-VHDX] 2.2.3).
func readRegions(f vdisk.File, fileSize int64) (bat, meta region, err error) {
	var why [2]string
	for i, off := range []int64{regionOffset1, regionOffset2} {
		bat, meta, why[i] = readRegionTable(f, off, fileSize)
		if why[i] == "" {
			return bat, meta, nil
		}
	}
	kind := vdisk.ErrCorrupt
	if strings.HasPrefix(why[0], unknownRegion) {
		kind = vdisk.ErrUnsupported
	}
	if why[0] == why[1] {
		return bat, meta, fmt.Errorf("vhdx %s: region table: %s: %w", f.Name(), why[0], kind)
	}
	return bat, meta, fmt.Errorf("vhdx %s: no valid region table (first: %s; second: %s): %w",
		f.Name(), why[0], why[1], kind)
}

// readRegionTable returns a reason in place of an error so the caller can
// fall back to the second copy and still report both.
func readRegionTable(f vdisk.File, off, fileSize int64) (bat, meta region, why string) {
	buf := make([]byte, regionTableSize)
	if _, err := f.ReadAt(buf, off); err == io.EOF {
		return bat, meta, "file too short"
	} else if err != nil {
		return bat, meta, err.Error()
	}
	if string(buf[:4]) != "regi" {
		return bat, meta, "no \"regi\" signature"
	}
	if !checksumOK(buf) {
		return bat, meta, "checksum mismatch"
	}
	count := binary.LittleEndian.Uint32(buf[8:])
	if count > maxRegions {
		return bat, meta, fmt.Sprintf("%d entries (at most %d)", count, maxRegions)
	}
	for i := range int(count) {
		e := buf[16+32*i : 48+32*i]
		var id GUID
		copy(id[:], e)
		r := region{int64(binary.LittleEndian.Uint64(e[16:])), int64(binary.LittleEndian.Uint32(e[24:]))}
		required := binary.LittleEndian.Uint32(e[28:])&1 != 0
		switch {
		case id == batRegionGUID:
			bat = r
		case id == metadataRegionGUID:
			meta = r
		case required:
			return bat, meta, fmt.Sprintf("%s %s is unknown", unknownRegion, id)
		default:
			continue
		}
		if r.offset < mib || r.offset%mib != 0 || r.length == 0 || r.offset+r.length > fileSize || r.offset+r.length < r.offset {
			return bat, meta, fmt.Sprintf("region %s at %d+%d lies outside the file (size %d) or is misaligned", id, r.offset, r.length, fileSize)
		}
	}
	if bat.length == 0 || meta.length == 0 {
		return bat, meta, "BAT or metadata region missing"
	}
	return bat, meta, ""
}
