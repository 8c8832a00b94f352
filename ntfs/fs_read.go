package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Type is "ntfs".
func (v *Volume) Type() string { return "ntfs" }

// Label is the volume name.
func (v *Volume) Label() string { return v.label }

// Root is record 5.
func (v *Volume) Root() volume.Ino { return recRoot }

// dirOf opens directory ino's index, cached: every lookup needs it, and
// opening parses the root node. Derived from the inode alone, it is
// dropped with it (cache.forgetInode) by any write of the directory's
// records.
func (v *Volume) dirOf(ino uint64) (*dirIndex, error) {
	if di := v.cache.getDir(ino); di != nil {
		return di, nil
	}
	in, err := v.loadInode(ino)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a directory: %w", ino, syscall.ENOTDIR)
	}
	di, err := v.openIndex(in)
	if err != nil {
		return nil, err
	}
	v.cache.putDir(di)
	return di, nil
}

// Lookup finds name in dir, case-insensitively.
func (v *Volume) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	return v.lookupAttr(dir, name, false)
}

// LookupAhead is Lookup for the FUSE tree, where a directory's names are
// mostly looked up in their order (rsync, cp -a, find, tar stat them one
// after the other): see readAhead.
func (v *Volume) LookupAhead(dir volume.Ino, name string) (volume.Attr, error) {
	return v.lookupAttr(dir, name, true)
}

func (v *Volume) lookupAttr(dir volume.Ino, name string, ahead bool) (volume.Attr, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.lookupIn(uint64(dir), name, ahead)
	if err != nil {
		return volume.Attr{}, err
	}
	if !in.isDir() && v.cache.getView(in.num) == nil {
		// the READs that follow an open (or a readdirplus) need not
		// find the record again; what cannot be read is said by them
		_, _ = v.makeView(in)
	}
	return v.attrOf(in)
}

func (v *Volume) lookup(dir uint64, name string) (*inode, error) {
	return v.lookupIn(dir, name, false)
}

// lookupIn finds name's inode in dir; with ahead, the records of the
// names after it are read with its own when the lookups go in order.
func (v *Volume) lookupIn(dir uint64, name string, ahead bool) (*inode, error) {
	di, err := v.dirOf(dir)
	if err != nil {
		return nil, err
	}
	n, i, err := v.locate(di, encodeName(name))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("ntfs: %q not in directory %d: %w", name, dir, syscall.ENOENT)
		}
		return nil, err
	}
	if ahead {
		v.readAhead(n, i)
	}
	return v.loadInode(n.entries[i].ref & refNumMask)
}

// GetAttr stats a file.
func (v *Volume) GetAttr(ino volume.Ino) (volume.Attr, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.loadInode(uint64(ino))
	if err != nil {
		return volume.Attr{}, err
	}
	return v.attrOf(in)
}

func (v *Volume) attrOf(in *inode) (volume.Attr, error) {
	a := volume.Attr{Ino: volume.Ino(in.num), Mode: 0o644, Nlink: in.nlink(),
		Atime: ntfsTime(in.si.atime), Mtime: ntfsTime(in.si.mtime), Ctime: ntfsTime(in.si.mftTime)}
	target, isLink, err := v.symlinkTarget(in)
	if err != nil {
		return a, err
	}
	switch {
	case isLink:
		a.Mode = os.ModeSymlink | 0o777
		a.Size = int64(len(target))
	case in.isDir():
		a.Mode = os.ModeDir | 0o755
		if s := in.find(atIndexAlloc, "$I30"); s != nil {
			a.Size, a.Blocks = s.dataSize, s.allocSize/512
		}
	default:
		if s := in.find(atData, ""); s != nil {
			a.Size = s.dataSize
			if !s.resident {
				a.Blocks = allocatedClusters(s.runs) * v.geo.clusterSize / 512
			}
		}
	}
	return a, nil
}

func allocatedClusters(runs []run) int64 {
	var n int64
	for _, r := range runs {
		if r.lcn >= 0 {
			n += r.length
		}
	}
	return n
}

// nlink counts the names that are not DOS aliases of a Win32 name.
func (in *inode) nlink() uint32 {
	n := uint32(0)
	for _, f := range in.names {
		if f.ns != nsDOS {
			n++
		}
	}
	if n == 0 {
		n = 1
	}
	return n
}

// ReadDir lists a directory in collation order, without DOS names and
// without the metadata files (records below 16), as ntfs-3g shows it.
func (v *Volume) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	di, err := v.dirOf(uint64(dir))
	if err != nil {
		return nil, err
	}
	var out []volume.DirEntry
	err = v.walkIndex(di, func(e *indexEntry) error {
		if d, ok := v.listEntry(e); ok {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// listEntry is what ReadDir lists of index entry e, if anything.
func (v *Volume) listEntry(e *indexEntry) (volume.DirEntry, bool) {
	ref := e.ref & refNumMask
	if e.ns == nsDOS || ref < firstUser {
		return volume.DirEntry{}, false
	}
	mode := entryMode(e.key)
	if mode == 0 && binary.LittleEndian.Uint32(e.key[0x38:])&faSystem != 0 {
		if in, err := v.loadInode(ref); err == nil { // maybe an Interix symlink
			if _, isLink, _ := v.symlinkTarget(in); isLink {
				mode = os.ModeSymlink
			}
		}
	}
	return volume.DirEntry{Name: decodeName(nameBytes(e.name)), Ino: volume.Ino(ref), Mode: mode}, true
}

// entryMode reads the file type from the $FILE_NAME copy in the index.
func entryMode(key []byte) os.FileMode {
	flags := binary.LittleEndian.Uint32(key[0x38:])
	if flags&faReparse != 0 && isLinkTag(binary.LittleEndian.Uint32(key[0x3c:])) {
		return os.ModeSymlink
	}
	if flags&faDupIndexRoot != 0 {
		return os.ModeDir
	}
	return 0
}

// ReadAt reads the unnamed data stream, through the file's read view.
func (v *Volume) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	rv, err := v.viewOf(uint64(ino))
	if err != nil {
		return 0, err
	}
	return v.read(rv, p, off)
}

// readable refuses content that would read as garbage.
func (v *Volume) readable(in *inode) error {
	if in.si.attrs&faEncrypted != 0 {
		return fmt.Errorf("ntfs: MFT record %d is EFS-encrypted: %w", in.num, syscall.EACCES)
	}
	tag, d, err := v.reparseData(in)
	if err != nil {
		return err
	}
	switch tag {
	case tagDedup:
		return fmt.Errorf("ntfs: MFT record %d is deduplicated (data in the dedup store): %w", in.num, syscall.EACCES)
	case tagWOF:
		if _, _, ok := wofFormat(d); ok && in.find(atData, wofStreamName) != nil {
			return nil // decompressed by ReadAt
		}
		if s := in.find(atData, ""); s == nil || s.dataSize == 0 || s.flags&afSparse != 0 {
			return fmt.Errorf("ntfs: MFT record %d is WOF-backed by an external WIM or unknown algorithm: %w", in.num, syscall.EACCES)
		}
	}
	return nil
}

// Readlink returns a symlink's or junction's target.
func (v *Volume) Readlink(ino volume.Ino) (string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.loadInode(uint64(ino))
	if err != nil {
		return "", err
	}
	target, isLink, err := v.symlinkTarget(in)
	if err != nil {
		return "", err
	}
	if !isLink {
		return "", fmt.Errorf("ntfs: MFT record %d is not a link: %w", in.num, syscall.EINVAL)
	}
	return target, nil
}

// Extended attribute names.
const (
	xattrUser     = "user."
	xattrAttrib   = "system.ntfs_attrib"
	xattrAttribBE = "system.ntfs_attrib_be"
)

// ListXattr lists the named data streams as user.<name>.
func (v *Volume) ListXattr(ino volume.Ino) ([]string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.loadInode(uint64(ino))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range in.streamNames() {
		if v.isWOFStream(in, n) { // its plain content is the file's
			continue
		}
		out = append(out, xattrUser+n)
	}
	sort.Strings(out)
	return out, nil
}

// GetXattr reads a named stream or the Windows attributes.
func (v *Volume) GetXattr(ino volume.Ino, name string) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.loadInode(uint64(ino))
	if err != nil {
		return nil, err
	}
	switch {
	case name == xattrAttrib || name == xattrAttribBE:
		b := make([]byte, 4)
		if name == xattrAttrib {
			binary.LittleEndian.PutUint32(b, in.winAttrs())
		} else {
			binary.BigEndian.PutUint32(b, in.winAttrs())
		}
		return b, nil
	case strings.HasPrefix(name, xattrUser) && len(name) > len(xattrUser):
		s := in.find(atData, name[len(xattrUser):])
		if s == nil {
			return nil, fmt.Errorf("ntfs: MFT record %d has no stream %q: %w", in.num, name, syscall.ENODATA)
		}
		if s.dataSize > 64<<20 {
			return nil, fmt.Errorf("ntfs: MFT record %d: stream %q of %d bytes is too large for an xattr: %w", in.num, name, s.dataSize, syscall.E2BIG)
		}
		b := make([]byte, s.dataSize)
		if _, err := v.readStream(s, b, 0); err != nil && err != io.EOF {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("ntfs: no xattr %q: %w", name, syscall.ENODATA)
}

// winAttrs is what system.ntfs_attrib shows, with the directory bit as ntfs-3g sets it.
func (in *inode) winAttrs() uint32 {
	a := in.si.attrs &^ faDupIndexRoot
	if in.isDir() {
		a |= faDirectory
	}
	return a
}

// StatFS counts free clusters in $Bitmap and free records in $MFT's bitmap.
func (v *Volume) StatFS() (volume.StatFS, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if st := v.statCache.Load(); st != nil { // counting a large $Bitmap is slow; writes drop this
		return *st, nil
	}
	st := volume.StatFS{BlockSize: uint32(v.geo.clusterSize), Blocks: uint64(v.clusters), NameMaxLen: 255}
	used, err := v.countBits(recBitmap, atData, "", v.clusters)
	if err != nil {
		return st, err
	}
	st.BlocksFree = uint64(v.clusters - used)
	recs := v.mftSize / int64(v.geo.recordSize)
	usedRecs, err := v.countBits(recMFT, atBitmap, "", recs)
	if err != nil {
		return st, err
	}
	st.Files, st.FilesFree = uint64(recs), uint64(recs-usedRecs)
	v.statCache.Store(&st)
	return st, nil
}

// countBits counts set bits among the first n of a bitmap stream.
func (v *Volume) countBits(ino uint64, typ uint32, name string, n int64) (int64, error) {
	in, err := v.loadInode(ino)
	if err != nil {
		return 0, err
	}
	s := in.find(typ, name)
	if s == nil {
		return 0, fmt.Errorf("ntfs: MFT record %d has no bitmap: %w", ino, syscall.EIO)
	}
	buf := make([]byte, 1<<16)
	var set int64
	for off := int64(0); off*8 < n; off += int64(len(buf)) {
		k, err := v.readStream(s, buf, off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := 0; i < k && (off+int64(i))*8 < n; i++ {
			b := buf[i]
			if rem := n - (off+int64(i))*8; rem < 8 {
				b &= byte(1<<rem - 1)
			}
			set += int64(bits.OnesCount8(b))
		}
		if k == 0 {
			break
		}
	}
	return set, nil
}
