package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// geometry is what the boot sector says about the volume's layout.
type geometry struct {
	sectorSize     int
	clusterSize    int64
	totalSectors   int64
	mftLCN         int64
	mftMirrLCN     int64
	recordSize     int
	indexBlockSize int
	serial         uint64
}

// parseBoot decodes and checks the boot sector; devSize bounds what it may claim.
func parseBoot(b []byte, devSize int64) (geometry, error) {
	var g geometry
	if len(b) < 512 || string(b[3:11]) != "NTFS    " {
		return g, fmt.Errorf("ntfs: boot sector has no NTFS signature: %w", syscall.EINVAL)
	}
	g.sectorSize = int(binary.LittleEndian.Uint16(b[0x0b:]))
	if !pow2(int64(g.sectorSize)) || g.sectorSize < 256 || g.sectorSize > 4096 {
		return g, fmt.Errorf("ntfs: boot sector: bad sector size %d: %w", g.sectorSize, syscall.EIO)
	}
	spc := int64(b[0x0d])
	if spc > 0x80 { // large clusters are stored as a negative power of two
		shift := 256 - spc
		if shift > 20 {
			return g, fmt.Errorf("ntfs: boot sector: bad sectors per cluster %#x: %w", b[0x0d], syscall.EIO)
		}
		spc = 1 << shift
	}
	g.clusterSize = spc * int64(g.sectorSize)
	if spc == 0 || !pow2(spc) || g.clusterSize > 2<<20 {
		return g, fmt.Errorf("ntfs: boot sector: bad cluster size (%d sectors): %w", spc, syscall.EIO)
	}
	g.totalSectors = int64(binary.LittleEndian.Uint64(b[0x28:]))
	g.mftLCN = int64(binary.LittleEndian.Uint64(b[0x30:]))
	g.mftMirrLCN = int64(binary.LittleEndian.Uint64(b[0x38:]))
	g.serial = binary.LittleEndian.Uint64(b[0x48:])
	var err error
	if g.recordSize, err = sizeField(int8(b[0x40]), g.clusterSize); err != nil || g.recordSize < 256 || g.recordSize > 65536 {
		return g, fmt.Errorf("ntfs: boot sector: bad MFT record size: %w", syscall.EIO)
	}
	if g.indexBlockSize, err = sizeField(int8(b[0x44]), g.clusterSize); err != nil || g.indexBlockSize < 256 || g.indexBlockSize > 65536 {
		return g, fmt.Errorf("ntfs: boot sector: bad index block size: %w", syscall.EIO)
	}
	if g.totalSectors <= 0 || g.totalSectors > devSize/int64(g.sectorSize)+1 {
		return g, fmt.Errorf("ntfs: boot sector: %d sectors do not fit the %d-byte device: %w", g.totalSectors, devSize, syscall.EIO)
	}
	clusters := g.totalClusters()
	if g.mftLCN <= 0 || g.mftLCN >= clusters || g.mftMirrLCN <= 0 || g.mftMirrLCN >= clusters {
		return g, fmt.Errorf("ntfs: boot sector: $MFT at cluster %d outside the volume: %w", g.mftLCN, syscall.EIO)
	}
	return g, nil
}

// sizeField decodes the "clusters per record" byte: positive counts clusters,
// negative is a power of two in bytes.
func sizeField(v int8, clusterSize int64) (int, error) {
	if v > 0 {
		n := int64(v) * clusterSize
		if n > 1<<20 || !pow2(n) {
			return 0, syscall.EIO
		}
		return int(n), nil
	}
	if v < -20 || v == 0 {
		return 0, syscall.EIO
	}
	return 1 << uint(-v), nil
}

func (g geometry) totalClusters() int64 {
	return g.totalSectors * int64(g.sectorSize) / g.clusterSize
}

func pow2(n int64) bool { return n > 0 && n&(n-1) == 0 }
