package partition

import (
	"encoding/binary"
	"fmt"
	"io"
)

type mbrEntry struct {
	status byte
	typ    byte
	lba    uint32
	count  uint32
}

func parseMBREntries(b []byte) [4]mbrEntry {
	var e [4]mbrEntry
	for i := range e {
		p := b[446+16*i:]
		e[i] = mbrEntry{status: p[0], typ: p[4], lba: binary.LittleEndian.Uint32(p[8:]), count: binary.LittleEndian.Uint32(p[12:])}
	}
	return e
}

func hasProtectiveEntry(b []byte) bool {
	for _, e := range parseMBREntries(b) {
		if e.typ == 0xEE {
			return true
		}
	}
	return false
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

func readMBR(r io.ReaderAt, size int64, mbr []byte) (*Table, error) {
	t := &Table{Kind: "mbr", DiskID: fmt.Sprintf("%08x", binary.LittleEndian.Uint32(mbr[440:]))}
	for i, e := range parseMBREntries(mbr) {
		if e.typ == 0 || e.count == 0 {
			continue
		}
		if isExtended(e.typ) {
			logical, err := readEBRChain(r, size, int64(e.lba))
			if err != nil {
				return nil, err
			}
			t.Partitions = append(t.Partitions, logical...)
			continue
		}
		p := mbrPartition(i+1, e, 0)
		if p.Start+p.Size > size {
			return nil, fmt.Errorf("MBR partition %d ends at byte %d, past the disk's %d: %w", i+1, p.Start+p.Size, size, ErrCorrupt)
		}
		t.Partitions = append(t.Partitions, p)
	}
	sortByNumber(t.Partitions)
	return t, nil
}

func mbrPartition(n int, e mbrEntry, base int64) Partition {
	return Partition{
		Number:   n,
		Type:     mbrTypeName(e.typ),
		TypeID:   fmt.Sprintf("0x%02x", e.typ),
		Start:    (base + int64(e.lba)) * 512,
		Size:     int64(e.count) * 512,
		Bootable: e.status == 0x80,
	}
}

// readEBRChain follows the linked list of extended boot records. Each EBR's
// first entry is a logical drive relative to that EBR; its second points to
// the next EBR relative to the start of the extended partition.
func readEBRChain(r io.ReaderAt, size, extStart int64) ([]Partition, error) {
	var out []Partition
	seen := map[int64]bool{}
	ebr := extStart
	buf := make([]byte, 512)
	for n := 5; ; n++ {
		if seen[ebr] || len(seen) > 1024 {
			return nil, fmt.Errorf("extended partition chain loops at sector %d: %w", ebr, ErrCorrupt)
		}
		seen[ebr] = true
		if ebr*512+512 > size {
			return nil, fmt.Errorf("extended boot record at sector %d is past the end of the disk: %w", ebr, ErrCorrupt)
		}
		if _, err := r.ReadAt(buf, ebr*512); err != nil {
			return nil, fmt.Errorf("reading extended boot record at sector %d: %w", ebr, err)
		}
		if buf[510] != 0x55 || buf[511] != 0xAA {
			return nil, fmt.Errorf("extended boot record at sector %d lacks its signature: %w", ebr, ErrCorrupt)
		}
		e := parseMBREntries(buf)
		if e[0].typ != 0 && e[0].count != 0 {
			p := mbrPartition(n, e[0], ebr)
			if p.Start+p.Size > size {
				return nil, fmt.Errorf("logical partition %d ends past the disk: %w", n, ErrCorrupt)
			}
			out = append(out, p)
		}
		if e[1].typ == 0 || e[1].lba == 0 {
			return out, nil
		}
		ebr = extStart + int64(e[1].lba)
	}
}

var mbrTypes = map[byte]string{
	0x01: "FAT12", 0x04: "FAT16 <32M", 0x06: "FAT16", 0x07: "NTFS/exFAT",
	0x0B: "W95 FAT32", 0x0C: "W95 FAT32 (LBA)", 0x0E: "W95 FAT16 (LBA)",
	0x27: "Windows recovery", 0x82: "Linux swap", 0x83: "Linux", 0x8E: "Linux LVM",
	0xEF: "EFI system", 0xFD: "Linux raid",
}

func mbrTypeName(t byte) string {
	if s, ok := mbrTypes[t]; ok {
		return s
	}
	return fmt.Sprintf("unknown (0x%02x)", t)
}
