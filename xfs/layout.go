package xfs

// v4 and v5 lay out the blocks the writer makes differently: v5
// (metadata CRCs) starts each with a self-describing header (CRC, disk
// address, UUID, owner, LSN) and has its own magic values; v4's headers
// are the short ones of before. The helpers here are what the writer
// asks of the layout instead of assuming v5.

func (f *FS) v5() bool { return f.sb.version == 5 }

// sumOK checks the CRC at off of a v5 metadata block; v4 has none.
func (f *FS) sumOK(b []byte, off int) bool { return !f.v5() || crcOK(b, off) }

// inodeCore is the size of an inode's core: 176 bytes for v3 inodes,
// 100 for v2 (and v1).
func inodeCore(version byte) int {
	if version == 3 {
		return diCore3
	}
	return diCore2
}

// inodeVersion is the version of the inodes the writer makes.
func (f *FS) inodeVersion() byte {
	if f.v5() {
		return 3
	}
	return 2
}

// sbtHdr is the size of a short-form B+tree block header.
func (f *FS) sbtHdr() int {
	if f.v5() {
		return sbtHdr5
	}
	return sbtHdr4
}

// v4Magic names the v4 blocks of the kinds whose v5 magic the writer
// knows by (finobt, rmapbt and refcountbt exist only with CRCs).
var v4Magic = map[string]string{"AB3B": "ABTB", "AB3C": "ABTC", "IAB3": "IABT", "BMA3": "BMAP",
	"XDB3": "XD2B", "XDD3": "XD2D", "XDF3": "XD2F"}

// magic is the magic a block named by its v5 magic has on this file system.
func (f *FS) magic(v5 string) string {
	if f.v5() {
		return v5
	}
	return v4Magic[v5]
}

// agflHdr is the size of the AGFL's header (v4's AGFL is the bare array).
func (f *FS) agflHdr() int {
	if f.v5() {
		return agflHdr5
	}
	return 0
}

// bmbtHdr is the size of a long-form (extent map) B+tree block header.
func (f *FS) bmbtHdr() int {
	if f.v5() {
		return bmbtHdr5
	}
	return bmbtHdr4
}

// dirFirst is where a directory's first entry after "." and ".." lies
// in its data block: the short-form entries' offsets start there.
func (f *FS) dirFirst() uint16 {
	return uint16(f.dbHdr() + f.dataEntSize(1) + f.dataEntSize(2))
}

// dbHdr is the size of a directory data block's header.
func (f *FS) dbHdr() int {
	if f.v5() {
		return dbHdr5
	}
	return dbHdr4
}

// dataEntSize is the size a name takes in a directory data block: inode
// number, length, name, file type when the file system keeps it, tag.
func (f *FS) dataEntSize(n int) int {
	ft := 0
	if f.sb.ftype {
		ft = 1
	}
	return (8 + 1 + n + ft + 2 + 7) &^ 7
}

// dirLayout is where a directory's blocks keep their fields.
type dirLayout struct {
	dataHdr, leafHdr, freeHdr int
	bestfree                  int // the data header's three longest free regions
	count                     int // a leaf's or node's count (then stale or level)
	firstdb                   int // a free-index block's firstdb, nvalid, nused
	leaf1, leafN, node        uint16
}

var (
	dirV5 = dirLayout{dataHdr: dbHdr5, leafHdr: 64, freeHdr: 64, bestfree: 48, count: 56, firstdb: 48,
		leaf1: 0x3df1, leafN: 0x3dff, node: 0x3ebe}
	dirV4 = dirLayout{dataHdr: dbHdr4, leafHdr: 16, freeHdr: 16, bestfree: 4, count: 12, firstdb: 4,
		leaf1: 0xd2f1, leafN: 0xd2ff, node: 0xfebe}
)

func (f *FS) dirLay() *dirLayout {
	if f.v5() {
		return &dirV5
	}
	return &dirV4
}

// blkHeader starts a data or free-index block (v5: xfs_dir3_blk_hdr;
// v4 has only the magic).
func (f *FS) blkHeader(b []byte, magic string, off int64, r *rawInode) {
	copy(b, f.magic(magic))
	if !f.v5() {
		return
	}
	be.PutUint64(b[8:], uint64(off/512))
	copy(b[24:40], r.uuid())
	be.PutUint64(b[40:], r.ino)
}

// daHeader starts a leaf or node block (xfs_da3_blkinfo, or v4's
// xfs_da_blkinfo: siblings and magic only).
func (f *FS) daHeader(b []byte, magic uint16, off int64, r *rawInode, forw, back uint32) {
	be.PutUint32(b[0:], forw)
	be.PutUint32(b[4:], back)
	be.PutUint16(b[8:], magic)
	if !f.v5() {
		return
	}
	be.PutUint64(b[16:], uint64(off/512))
	copy(b[32:48], r.uuid())
	be.PutUint64(b[48:], r.ino)
}

// uuid is the UUID a v3 inode's blocks carry in their headers.
func (r *rawInode) uuid() []byte {
	if r.b[4] != 3 {
		return nil
	}
	return r.b[diUUID : diUUID+16]
}

// core is the size of the inode's core: its literal area follows.
func (r *rawInode) core() int { return inodeCore(r.b[4]) }

// attrFormat is where attribute leaf, node and remote value blocks
// keep their fields: after the block info (56 bytes on v5, 12 on v4)
// a leaf has count, usedbytes, firstused, holes and the free map; a
// node count and level.
type attrFormat struct {
	info, leafHdr, nodeHdr, rmtHdr int
	leaf, node                     uint16
}

var (
	attrV5 = attrFormat{info: 56, leafHdr: 80, nodeHdr: 64, rmtHdr: 56, leaf: 0x3bee, node: 0x3ebe}
	attrV4 = attrFormat{info: 12, leafHdr: 32, nodeHdr: 16, rmtHdr: 0, leaf: 0xfbee, node: 0xfebe}
)

func (f *FS) attrLay() *attrFormat {
	if f.v5() {
		return &attrV5
	}
	return &attrV4
}
