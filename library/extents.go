package library

import (
	"bufio"
	"os"
	"strings"
)

// hideExtents drops the data files of multi-file VMDKs (flat and split
// extents): they belong to the descriptor that names them, and a flat
// extent would otherwise look like a raw disk of its own.
func hideExtents(ents []Entry) []Entry {
	owned := map[string]bool{}
	for _, e := range ents {
		if e.Format == "vmdk" {
			for _, x := range vmdkExtentNames(e.Path) {
				if x != e.Name { // a monolithic file names itself
					owned[x] = true
				}
			}
		}
	}
	if len(owned) == 0 {
		return ents
	}
	out := ents[:0]
	for _, e := range ents {
		if !owned[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// vmdkExtentNames reads extent lines ("RW 2048 FLAT "x-flat.vmdk" 0") from
// a text descriptor. Binary sparse files are skipped after a short read.
func vmdkExtentNames(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(&limited{f: f, n: 64 * 1024})
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !(strings.HasPrefix(line, "RW ") || strings.HasPrefix(line, "RDONLY ") || strings.HasPrefix(line, "NOACCESS ")) {
			continue
		}
		if i := strings.IndexByte(line, '"'); i >= 0 {
			if j := strings.IndexByte(line[i+1:], '"'); j >= 0 {
				names = append(names, line[i+1:i+1+j])
			}
		}
	}
	return names
}

type limited struct {
	f *os.File
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, os.ErrClosed
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= n
	return n, err
}
