package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	keyCompName = 0x0020 // KEY_COMP_NAME: the name is Latin-1
	maxDepth    = 512    // Windows refuses deeper trees; we use it to stop cycles
	indexAbove  = 32     // subkey lists longer than this get a lookup map
)

// Key is one registry key. Its subkeys and values are decoded on first use.
type Key struct {
	h      *Hive
	parent *Key
	cell   uint32 // nk cell in the hive bins data, noCell for a key made here
	depth  int

	name    string
	flags   uint16
	written uint64 // FILETIME
	access  uint32 // the nk "spare"/access bits, kept as found
	class   []byte
	sec     *Security

	nsub, subList uint32
	nval, valList uint32

	// Decoded lazily by readers holding h.mu.RLock: filled under h.dec,
	// then published by the atomic flag, so a reader that sees the flag set
	// reads subs (vals) without taking h.dec. Edits replace the slices under
	// h.mu.Lock and never write into a backing array a reader may hold.
	subs       []*Key
	subsLoaded atomic.Bool
	index      map[string]*Key // under h.dec (or h.mu.Lock)
	found      map[uint32]*Key // children met by a lookup before subs is loaded; under h.dec
	vals       []*Value
	valsLoaded atomic.Bool
	deleted    bool
	dirty      uint8 // what edits changed since the hive was opened (dirtyVals, ...); under h.mu
}

// The dirty bits of a key: what an in-place save must write again.
const (
	dirtyVals  = 1 << iota // the value list
	dirtySubs              // the subkey list
	dirtyClass             // the class name
)

// parseKey decodes the nk cell at off.
func (h *Hive) parseKey(off uint32, parent *Key) (*Key, error) {
	c, _, err := h.sigCell(off, "nk")
	if err != nil {
		return nil, err
	}
	if len(c) < 76 {
		return nil, fmt.Errorf("key cell at 0x%x is %d bytes, want at least 76: %w", off, len(c), ErrCorrupt)
	}
	le := binary.LittleEndian
	k := &Key{h: h, parent: parent, cell: off}
	if parent != nil {
		k.depth = parent.depth + 1
	}
	k.flags = le.Uint16(c[2:])
	k.written = le.Uint64(c[4:])
	k.access = le.Uint32(c[12:])
	k.nsub = le.Uint32(c[20:])
	k.subList = le.Uint32(c[28:])
	k.nval = le.Uint32(c[36:])
	k.valList = le.Uint32(c[40:])
	secOff := le.Uint32(c[44:])
	classOff := le.Uint32(c[48:])
	nameLen := int(le.Uint16(c[72:]))
	classLen := int(le.Uint16(c[74:]))
	if 76+nameLen > len(c) {
		return nil, fmt.Errorf("key cell at 0x%x: name of %d bytes overruns the %d-byte cell: %w", off, nameLen, len(c), ErrCorrupt)
	}
	k.name = decodeName(c[76:76+nameLen], k.flags&keyCompName != 0)
	if classLen > 0 && classOff != noCell {
		cc, err := h.cell(classOff)
		if err != nil {
			return nil, fmt.Errorf("class name of key %q: %w", k.name, err)
		}
		k.class = append([]byte(nil), cc[:min(classLen, len(cc))]...)
	}
	if s, err := h.security(secOff); err == nil {
		k.sec = s
	} else {
		h.problem(fmt.Errorf("security of key %q: %w", k.name, err))
	}
	return k, nil
}

// Name is the key's name as stored (the root's name is whatever Windows
// wrote there, e.g. "CMI-CreateHive{...}" or "ROOT").
func (k *Key) Name() string { return k.name }

// Parent is the parent key, nil for the root.
func (k *Key) Parent() *Key { return k.parent }

// Hive is the hive holding the key.
func (k *Key) Hive() *Hive { return k.h }

// LastWritten is the key's last-written time.
func (k *Key) LastWritten() time.Time {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return filetimeToTime(k.written)
}

// Class is the key's class name (UTF-16LE bytes, as stored), or nil.
func (k *Key) Class() []byte {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.class
}

// Security is the key's security descriptor cell, shared between keys.
func (k *Key) Security() *Security {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.sec
}

// Path is the key's path below the root, with backslashes; "" for the root.
func (k *Key) Path() string {
	if k.parent == nil {
		return ""
	}
	p := k.parent.Path()
	if p == "" {
		return k.name
	}
	return p + `\` + k.name
}

// Subkeys returns the key's subkeys in the order of the hive's list (the
// slice is the key's own: do not modify it).
func (k *Key) Subkeys() ([]*Key, error) {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.subkeys()
}

// subkeys is Subkeys for a caller holding h.mu (shared or exclusive).
func (k *Key) subkeys() ([]*Key, error) {
	if k.deleted {
		return nil, fmt.Errorf("key %q was deleted: %w", k.name, ErrNotFound)
	}
	if k.subsLoaded.Load() {
		return k.subs, nil
	}
	k.h.dec.Lock()
	defer k.h.dec.Unlock()
	if !k.subsLoaded.Load() {
		subs, err := k.readSubkeys()
		if err != nil {
			return nil, err
		}
		for _, c := range subs {
			if err := k.h.own(c); err != nil {
				return nil, fmt.Errorf("subkeys of %q: %w", k.Path(), err)
			}
		}
		k.subs, k.found = subs, nil
		k.subsLoaded.Store(true)
	}
	return k.subs, nil
}

// readSubkeys decodes the subkey list from the cells without keeping it.
func (k *Key) readSubkeys() ([]*Key, error) {
	if k.nsub == 0 || k.cell == noCell {
		return nil, nil
	}
	if k.depth >= maxDepth {
		return nil, fmt.Errorf("key %q is nested deeper than %d levels (a cycle?): %w", k.Path(), maxDepth, ErrCorrupt)
	}
	offs, err := k.h.readList(k.subList, k.nsub)
	if err != nil {
		return nil, fmt.Errorf("subkeys of %q: %w", k.Path(), err)
	}
	seen := make(map[uint32]bool, len(offs))
	for _, off := range offs {
		if seen[off] {
			return nil, fmt.Errorf("subkeys of %q: key cell 0x%x listed twice: %w", k.Path(), off, ErrCorrupt)
		}
		seen[off] = true
	}
	subs := make([]*Key, 0, len(offs))
	for _, off := range offs {
		for a := k; a != nil; a = a.parent {
			if a.cell == off {
				return nil, fmt.Errorf("subkeys of %q: key cell 0x%x is its own ancestor (a cycle): %w", k.Path(), off, ErrCorrupt)
			}
		}
		if c, ok := k.found[off]; ok {
			subs = append(subs, c) // the same object a lookup handed out
			continue
		}
		c, err := k.h.parseKey(off, k)
		if err != nil {
			return nil, fmt.Errorf("subkeys of %q: %w", k.Path(), err)
		}
		subs = append(subs, c)
	}
	return subs, nil
}

// HasSubkeys says whether the key has any subkey, without decoding its
// list: the registry view asks before looking a name up as a subkey, so
// that finding a value in a leaf key costs no failed search (and no error
// naming the key's path).
func (k *Key) HasSubkeys() bool {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	switch {
	case k.deleted:
		return false
	case k.subsLoaded.Load():
		return len(k.subs) > 0
	}
	return k.cell != noCell && k.nsub > 0
}

// Subkey finds a direct subkey by name, case-insensitively. In a big list
// not yet decoded it binary-searches the sorted list on disk, decoding only
// the keys it compares with.
func (k *Key) Subkey(name string) (*Key, error) {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.subkey(name)
}

// subkey is Subkey for a caller holding h.mu.
func (k *Key) subkey(name string) (*Key, error) {
	if !k.subsLoaded.Load() && !k.deleted && k.cell != noCell && k.nsub > 0 {
		if c := k.searchLocked(name, k.nsub > indexAbove); c != nil {
			return c, nil
		}
	}
	subs, err := k.subkeys()
	if err != nil {
		return nil, err
	}
	if len(subs) > indexAbove {
		if s := k.indexed(subs, name); s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("key %q has no subkey %q: %w", k.Path(), name, ErrNotFound)
	}
	for _, s := range subs {
		if sameName(s.name, name) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("key %q has no subkey %q: %w", k.Path(), name, ErrNotFound)
}

// indexed looks name up in the key's name map, built on first use.
func (k *Key) indexed(subs []*Key, name string) *Key {
	k.h.dec.Lock()
	defer k.h.dec.Unlock()
	if k.index == nil {
		k.index = make(map[string]*Key, len(subs))
		for _, s := range subs {
			k.index[foldName(s.name)] = s
		}
	}
	return k.index[foldName(name)]
}

// searchLocked looks name up on disk under h.dec, by the lh hashes and
// then (sorted, when the list is long) by name, unless another reader has
// decoded the whole list meanwhile (its objects are then the ones to use).
func (k *Key) searchLocked(name string, sorted bool) *Key {
	k.h.dec.Lock()
	defer k.h.dec.Unlock()
	if k.subsLoaded.Load() {
		return nil
	}
	offs, hashes, err := k.h.readHashedList(k.subList, k.nsub)
	if err != nil {
		return nil
	}
	if c := k.searchHashed(offs, hashes, name); c != nil {
		return c
	}
	if !sorted {
		return nil
	}
	return k.searchOnDisk(offs, name)
}

// searchHashed decodes only the subkeys whose lh hash is name's: one key
// cell per level of a path instead of every key of a short list or the
// probes of a binary search, each a page of the hive to read on a cold
// cache. A hash is only a hint (a hive written by another tool may hold a
// wrong one): nil sends the caller to the search by name.
func (k *Key) searchHashed(offs, hashes []uint32, name string) *Key {
	if hashes == nil {
		return nil
	}
	want := nameHash(name)
	for i, h := range hashes {
		if h != want {
			continue
		}
		c, err := k.child(offs[i])
		if err != nil {
			return nil
		}
		if sameName(c.name, name) {
			return c
		}
	}
	return nil
}

// searchOnDisk looks name up in the on-disk list, which Windows keeps
// sorted by upcased name; nil means "not found this way" and the caller
// falls back on decoding the whole list.
func (k *Key) searchOnDisk(offs []uint32, name string) *Key {
	want := upcaseUnits(name)
	lo, hi := 0, len(offs)
	for lo < hi {
		mid := (lo + hi) / 2
		c, err := k.child(offs[mid])
		if err != nil {
			return nil
		}
		switch cmp := compareUnits(upcaseUnits(c.name), want); {
		case cmp == 0:
			return c
		case cmp < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return nil
}

// child decodes (once) the subkey at off met during a lookup; h.dec held.
func (k *Key) child(off uint32) (*Key, error) {
	if c, ok := k.found[off]; ok {
		return c, nil
	}
	for a := k; a != nil; a = a.parent {
		if a.cell == off {
			return nil, fmt.Errorf("key cell 0x%x is its own ancestor: %w", off, ErrCorrupt)
		}
	}
	if k.depth >= maxDepth {
		return nil, fmt.Errorf("deeper than %d levels: %w", maxDepth, ErrCorrupt)
	}
	c, err := k.h.parseKey(off, k)
	if err != nil {
		return nil, err
	}
	if err := k.h.own(c); err != nil {
		return nil, err
	}
	if k.found == nil {
		k.found = make(map[uint32]*Key)
	}
	k.found[off] = c
	return c, nil
}

// Lookup follows a backslash-separated path below k ("" is k itself).
func (k *Key) Lookup(path string) (*Key, error) {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.lookup(path)
}

func (k *Key) lookup(path string) (*Key, error) {
	cur := k
	for _, part := range splitPath(path) {
		next, err := cur.subkey(part)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// filetimeToTime converts a FILETIME (100 ns ticks since 1601) to time.Time.
func filetimeToTime(ft uint64) time.Time {
	return time.Unix(int64(ft/10000000)-11644473600, int64(ft%10000000)*100).UTC()
}

// timeToFiletime is the inverse of filetimeToTime.
func timeToFiletime(t time.Time) uint64 {
	return uint64((t.Unix()+11644473600)*10000000 + int64(t.Nanosecond()/100))
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// own records which parent a decoded key cell belongs to (h.dec held). A cell listed
// under two parents makes the tree a graph that could be exponentially
// large to walk: it is refused.
func (h *Hive) own(c *Key) error {
	if c.cell == noCell {
		return nil
	}
	if h.owner == nil {
		h.owner = make(map[uint32]*Key)
	}
	if p, ok := h.owner[c.cell]; ok && p != c.parent {
		return fmt.Errorf("key cell 0x%x is listed under two parents: %w", c.cell, ErrCorrupt)
	}
	h.owner[c.cell] = c.parent
	return nil
}

// ID is a number for the key unique in its hive and stable while the hive
// is open (its nk cell's offset), or NoID for a key made since it opened.
func (k *Key) ID() uint32 { return k.cell }

// NoID is the ID of keys and values made since the hive was opened.
const NoID = noCell
