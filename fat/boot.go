package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
)

// geometry is where everything lives on the device, derived from the BPB
// (fatgen103, "Boot Sector and BPB") and checked against the device size.
type geometry struct {
	kind        int   // 12, 16 or 32: decided by the cluster count alone, as the spec says
	bps         int64 // bytes per sector
	clusterSize int64
	fatStart    int64 // byte offset of the first FAT
	fatSize     int64 // bytes of one FAT
	numFATs     int
	activeFAT   int   // FAT32 with mirroring off: the only FAT in use; else -1
	rootStart   int64 // FAT12/16 fixed root directory
	rootSize    int64
	dataStart   int64
	clusters    uint32 // data clusters; valid numbers are 2..clusters+1
	rootCluster uint32 // FAT32
	fsInfo      int64  // byte offset of the FAT32 FSInfo sector, 0 when none
	bootLabel   string
}

// Cluster count thresholds from fatgen103: fewer than 4085 is FAT12, fewer
// than 65525 is FAT16, anything else FAT32.
const (
	maxFAT12Clusters = 4084
	maxFAT16Clusters = 65524
)

func corrupt(format string, a ...any) error {
	return fmt.Errorf("fat: "+format+": %w", append(a, syscall.EIO)...)
}

func parseBoot(b []byte, devSize int64) (geometry, error) {
	var g geometry
	le := binary.LittleEndian
	bps := int64(le.Uint16(b[11:]))
	spc := int64(b[13])
	rsvd := int64(le.Uint16(b[14:]))
	nfats := int64(b[16])
	rootEnt := int64(le.Uint16(b[17:]))
	tot := int64(le.Uint16(b[19:]))
	fatSz := int64(le.Uint16(b[22:]))
	if tot == 0 {
		tot = int64(le.Uint32(b[32:]))
	}
	if fatSz == 0 {
		fatSz = int64(le.Uint32(b[36:]))
	}
	switch bps {
	case 512, 1024, 2048, 4096:
	default:
		return g, corrupt("boot sector: %d bytes per sector is not a FAT volume", bps)
	}
	if spc == 0 || spc&(spc-1) != 0 {
		return g, corrupt("boot sector: %d sectors per cluster", spc)
	}
	if rsvd == 0 || nfats == 0 || nfats > 4 || fatSz == 0 || tot == 0 {
		return g, corrupt("boot sector: reserved %d, FATs %d, FAT size %d, sectors %d", rsvd, nfats, fatSz, tot)
	}
	if tot*bps > devSize {
		return g, corrupt("boot sector: volume of %d bytes is larger than its %d-byte partition", tot*bps, devSize)
	}
	rootSecs := (rootEnt*32 + bps - 1) / bps
	meta := rsvd + nfats*fatSz + rootSecs
	if meta >= tot {
		return g, corrupt("boot sector: no data region (%d metadata sectors of %d)", meta, tot)
	}
	count := (tot - meta) / spc
	g = geometry{
		bps: bps, clusterSize: bps * spc,
		fatStart: rsvd * bps, fatSize: fatSz * bps, numFATs: int(nfats), activeFAT: -1,
		rootStart: (rsvd + nfats*fatSz) * bps, rootSize: rootSecs * bps,
		dataStart: meta * bps,
	}
	switch {
	case count <= maxFAT12Clusters:
		g.kind = 12
	case count <= maxFAT16Clusters:
		g.kind = 16
	default:
		g.kind = 32
	}
	// A FAT too small for the clusters it must describe: use only what it maps.
	if capacity := g.fatSize*8/int64(g.kind) - 2; count > capacity {
		count = capacity
	}
	if count < 1 {
		return g, corrupt("boot sector: FAT maps no clusters")
	}
	g.clusters = uint32(count)
	labelAt := 43
	if g.kind == 32 {
		labelAt = 71
		if err := g.parseFAT32(b, rsvd); err != nil {
			return g, err
		}
	} else if rootEnt == 0 {
		return g, corrupt("boot sector: FAT%d volume without root directory entries", g.kind)
	}
	if b[labelAt-5] == 0x29 {
		g.bootLabel = strings.TrimRight(string(b[labelAt:labelAt+11]), " \x00")
		if g.bootLabel == "NO NAME" {
			g.bootLabel = ""
		}
	}
	return g, nil
}

func (g *geometry) parseFAT32(b []byte, rsvd int64) error {
	le := binary.LittleEndian
	ext := le.Uint16(b[40:])
	if ext&0x80 != 0 {
		g.activeFAT = int(ext & 0x0f)
		if g.activeFAT >= g.numFATs {
			return corrupt("boot sector: active FAT %d of %d", g.activeFAT, g.numFATs)
		}
	}
	g.rootCluster = le.Uint32(b[44:]) & 0x0fffffff
	if !g.valid(g.rootCluster) {
		return corrupt("boot sector: root directory cluster %d out of range", g.rootCluster)
	}
	if s := int64(le.Uint16(b[48:])); s > 0 && s < rsvd {
		g.fsInfo = s * g.bps
	}
	return nil
}

// valid reports whether c names a data cluster.
func (g *geometry) valid(c uint32) bool { return c >= 2 && c <= g.clusters+1 }

func (g *geometry) clusterOffset(c uint32) int64 {
	return g.dataStart + int64(c-2)*g.clusterSize
}
