package vdisk

import (
	"io"
	"sync"
)

// MemFile is a File held in memory: for tests, fuzzing, and staging small
// files. It grows on write past its end, as a host file does.
type MemFile struct {
	mu   sync.RWMutex
	name string
	data []byte
}

// NewMemFile returns a MemFile holding a copy of data.
func NewMemFile(name string, data []byte) *MemFile {
	return &MemFile{name: name, data: append([]byte(nil), data...)}
}

func (m *MemFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *MemFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	end := off + int64(len(p))
	if end > int64(len(m.data)) {
		m.grow(end)
	}
	return copy(m.data[off:], p), nil
}

func (m *MemFile) grow(n int64) {
	if n <= int64(cap(m.data)) {
		m.data = m.data[:n]
		return
	}
	nd := make([]byte, n, n+n/4)
	copy(nd, m.data)
	m.data = nd
}

func (m *MemFile) Size() (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.data)), nil
}

func (m *MemFile) Truncate(n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n > int64(len(m.data)) {
		m.grow(n)
		return nil
	}
	clear(m.data[n:])
	m.data = m.data[:n]
	return nil
}

// Bytes returns the current content (not a copy).
func (m *MemFile) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.data
}

func (m *MemFile) Name() string { return m.name }
func (m *MemFile) Close() error { return nil }
