package hive

import (
	"fmt"
	"time"
)

// gone says whether the key or one of its ancestors was deleted.
func (k *Key) gone() bool {
	for a := k; a != nil; a = a.parent {
		if a.deleted {
			return true
		}
	}
	return false
}

// touch marks the key changed now, as Windows updates a key's last-written
// time when its values or its list of subkeys change; what changed (the
// dirty bits) tells an in-place save which cells to write again.
func (k *Key) touch(what uint8) {
	k.written = timeToFiletime(time.Now())
	k.h.modified = true
	k.h.edits++
	if k.dirty == 0 && !k.h.diskMoved {
		k.h.dirtyKeys = append(k.h.dirtyKeys, k)
	}
	k.dirty |= what
}

// CreateSubkey adds a new subkey. It fails with ErrExist when a subkey of
// that name (case-insensitively) exists. The new key shares its parent's
// security descriptor, as a key created by Windows inherits one.
func (k *Key) CreateSubkey(name string) (*Key, error) {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	return k.createSubkey(name)
}

func (k *Key) createSubkey(name string) (*Key, error) {
	if k.gone() {
		return nil, fmt.Errorf("create %q under deleted key %q: %w", name, k.name, ErrNotFound)
	}
	if !validName(name, true) {
		return nil, fmt.Errorf("key name %q: empty, too long, or holds a backslash: %w", name, ErrInvalid)
	}
	if k.depth+1 >= maxDepth {
		return nil, fmt.Errorf("create %q: deeper than %d levels: %w", name, maxDepth, ErrInvalid)
	}
	if _, err := k.subkey(name); err == nil {
		return nil, fmt.Errorf("create %q under %q: %w", name, k.Path(), ErrExist)
	} else if !isNotFound(err) {
		return nil, err
	}
	c := &Key{h: k.h, parent: k, cell: noCell, depth: k.depth + 1, name: name, sec: k.sec}
	c.subsLoaded.Store(true)
	c.valsLoaded.Store(true)
	c.written = timeToFiletime(time.Now())
	k.subs = append(k.subs[:len(k.subs):len(k.subs)], c) // a new array: readers may hold the old
	if k.index != nil {
		k.index[foldName(name)] = c
	}
	k.touch(dirtySubs)
	return c, nil
}

// CreatePath returns the key at path below k, creating missing keys.
func (k *Key) CreatePath(path string) (*Key, error) {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	cur := k
	for _, part := range splitPath(path) {
		next, err := cur.subkey(part)
		if isNotFound(err) {
			next, err = cur.createSubkey(part)
		}
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// DeleteSubkey removes a subkey and everything below it.
func (k *Key) DeleteSubkey(name string) error {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	if k.gone() {
		return fmt.Errorf("delete %q under deleted key %q: %w", name, k.name, ErrNotFound)
	}
	if _, err := k.subkeys(); err != nil { // the list is about to change
		return err
	}
	c, err := k.subkey(name)
	if err != nil {
		return err
	}
	for i, s := range k.subs {
		if s == c {
			k.subs = append(k.subs[:i:i], k.subs[i+1:]...)
			break
		}
	}
	if k.index != nil {
		delete(k.index, foldName(c.name))
	}
	c.deleted = true
	k.touch(dirtySubs)
	return nil
}

// SetValue creates or replaces a value (name "" is the default value).
func (k *Key) SetValue(name string, typ uint32, data []byte) error {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	if k.gone() {
		return fmt.Errorf("set value %q on deleted key %q: %w", name, k.name, ErrNotFound)
	}
	if !validName(name, false) {
		return fmt.Errorf("value name %q: too long or not UTF-8: %w", name, ErrInvalid)
	}
	if len(data) > maxValueData {
		return fmt.Errorf("value %q: %d bytes of data is too much: %w", name, len(data), ErrInvalid)
	}
	vals, err := k.values()
	if err != nil {
		return err
	}
	nv := &Value{h: k.h, name: name, typ: typ, cell: noCell, data: append([]byte{}, data...)}
	for i, v := range vals {
		if sameName(v.name, name) {
			nv.name = v.name                                                        // Windows keeps the stored spelling
			k.vals = append(k.vals[:i:i], append([]*Value{nv}, k.vals[i+1:]...)...) // readers may hold the old array
			k.touch(dirtyVals)
			return nil
		}
	}
	k.vals = append(k.vals[:len(k.vals):len(k.vals)], nv)
	k.touch(dirtyVals)
	return nil
}

// DeleteValue removes a value.
func (k *Key) DeleteValue(name string) error {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	if k.gone() {
		return fmt.Errorf("delete value %q on deleted key %q: %w", name, k.name, ErrNotFound)
	}
	vals, err := k.values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if sameName(v.name, name) {
			k.vals = append(k.vals[:i:i], k.vals[i+1:]...)
			k.touch(dirtyVals)
			return nil
		}
	}
	return fmt.Errorf("key %q has no value %q: %w", k.Path(), name, ErrNotFound)
}

// SetClass sets the key's class name (UTF-16LE bytes; nil removes it).
func (k *Key) SetClass(class []byte) error {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	if len(class) > 0xFFFF {
		return fmt.Errorf("class of %d bytes: %w", len(class), ErrInvalid)
	}
	k.class = append([]byte(nil), class...)
	k.touch(dirtyClass)
	return nil
}

// SetSecurity gives the key a security descriptor (shared if the same
// *Security is given to several keys).
func (k *Key) SetSecurity(s *Security) {
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	k.sec = s
	k.h.modified = true
	k.h.edits++
	k.h.secEdited = true // sk cells and their counts: left to Serialize
}

func splitPath(path string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '\\' {
			if i > start {
				out = append(out, path[start:i])
			}
			start = i + 1
		}
	}
	return out
}
