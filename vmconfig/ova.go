package vmconfig

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// OVA is an OVF package as one tar file (DSP0243 §5.3): the descriptor
// first, then the manifest and certificate, then the disks. Members are
// read in place, never extracted.
type OVA struct {
	Descriptor string // the .ovf member's name
	Members    []Member
	VM         *VM
}

// Member is one file stored in the tar, at Offset for Size bytes.
type Member struct {
	Name   string
	Offset int64
	Size   int64
}

// maxMembers bounds the index: real packages hold a handful of files.
const maxMembers = 4096

// IsOVA tells an OVA by content: a ustar header whose first member is an
// .ovf descriptor, as the specification requires.
func IsOVA(head []byte) bool {
	if len(head) < 512 || !bytes.Equal(head[257:262], []byte("ustar")) {
		return false
	}
	name := string(bytes.TrimRight(head[:100], "\x00"))
	return strings.HasSuffix(strings.ToLower(name), ".ovf")
}

// ParseOVA indexes the tar in r (size bytes long) and reads its OVF.
func ParseOVA(r io.ReaderAt, size int64) (*OVA, error) {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	out := &OVA{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if len(out.Members) >= maxMembers {
			return nil, fmt.Errorf("tar holds more than %d members", maxMembers)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		if h.Size < 0 || paxSparse(h) {
			return nil, fmt.Errorf("tar member %s has a bad size", h.Name)
		}
		// the reader stands at the member's first byte: tar stores data
		// contiguously after its header blocks
		off, _ := sr.Seek(0, io.SeekCurrent)
		if off+h.Size > size {
			return nil, fmt.Errorf("tar member %s runs past the end of the file", h.Name)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		out.Members = append(out.Members, Member{Name: name, Offset: off, Size: h.Size})
		if out.Descriptor == "" && strings.HasSuffix(strings.ToLower(name), ".ovf") {
			vm, err := ParseOVF(io.NewSectionReader(r, off, h.Size))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out.Descriptor, out.VM = name, vm
		}
	}
	if out.VM == nil {
		return nil, fmt.Errorf("tar holds no .ovf descriptor: %w", ErrNotConfig)
	}
	return out, nil
}

// Member returns the member of that name (as the OVF's hrefs name it).
func (o *OVA) Member(name string) (Member, bool) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	for _, m := range o.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// paxSparse tells a PAX-format sparse member, whose stored bytes are not
// its content: such a member cannot be read in place.
func paxSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
