package patcher

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/offvm/offvm/registry/hive"
)

// Where a patch is recorded in the guest (CONTRACT.md, "Patch bundles").
const (
	PatchesKey = `offvm\Patches` // below HKLM\SOFTWARE
	PatchesDir = "var/lib/offvm/patches"
)

// maxListed bounds the change list kept in a record.
const maxListed = 1000

// readRecord says whether the bundle is recorded as applied, and when.
func (t *target) readRecord(id string) (applied string, found bool, err error) {
	switch t.family() {
	case "windows":
		if t.reg == nil {
			return "", false, fmt.Errorf("no Windows registry to record patches in")
		}
		return t.reg.readRecord(id)
	case "linux":
		v, err := t.rootVolume()
		if err != nil {
			return "", false, err
		}
		b, err := readSmall(v.fs, append(strings.Split(PatchesDir, "/"), id), 1<<20)
		if isNotExist(err) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		var rec linuxRecord
		if json.Unmarshal(b, &rec) == nil {
			applied = rec.Applied
		}
		return applied, true, nil
	}
	return "", false, fmt.Errorf("no operating system found in the image, so there is nowhere to record a patch")
}

func (t *target) family() string {
	if t.os == nil {
		return ""
	}
	return t.os.Family
}

// rootVolume is a Linux guest's root file system.
func (t *target) rootVolume() (*vol, error) {
	var n int
	if _, err := fmt.Sscanf(t.os.SystemPartition, "p%d", &n); err != nil {
		return nil, fmt.Errorf("the root file system's partition is unknown")
	}
	return t.volume(Target{Part: n})
}

// recordChange is the line --dry-run shows for the record.
func (t *target) recordChange(id string) Change {
	if t.family() == "linux" {
		return Change{Action: "record", Path: "/" + PatchesDir + "/" + id}
	}
	return Change{Action: "record", Path: `HKLM\SOFTWARE\` + PatchesKey + `\` + id}
}

// linuxRecord is the content of /var/lib/offvm/patches/<id>.
type linuxRecord struct {
	ID              string   `json:"id"`
	Title           string   `json:"title"`
	Applied         string   `json:"applied"`
	Files           int      `json:"files"`
	RegistryChanges int      `json:"registry_changes"`
	Changes         []string `json:"changes"`
}

// writeRecord records the bundle as applied now, with what it changed.
func (t *target) writeRecord(b *Bundle, p *Plan, now time.Time) error {
	files, values := p.Count()
	when := now.UTC().Format(time.RFC3339)
	var list []string
	for _, c := range p.Changes {
		if len(list) == maxListed {
			list = append(list, fmt.Sprintf("... and %d more", len(p.Changes)-maxListed))
			break
		}
		list = append(list, c.Action+" "+c.Path+suffix(c.Detail))
	}
	if t.family() == "linux" {
		return t.writeLinuxRecord(linuxRecord{ID: b.ID, Title: b.Title, Applied: when, Files: files, RegistryChanges: values, Changes: list})
	}
	if t.reg == nil {
		return fmt.Errorf("no Windows registry to record the patch in")
	}
	return t.reg.setValues(PatchesKey+`\`+b.ID, []regValue{
		{"Title", hive.RegSz, sz(b.Title)},
		{"Applied", hive.RegSz, sz(when)},
		{"Files", hive.RegDword, dword(files)},
		{"RegistryChanges", hive.RegDword, dword(values)},
		{"Changes", hive.RegMultiSz, multiSz(list)},
	})
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

func (t *target) writeLinuxRecord(rec linuxRecord) error {
	v, err := t.rootVolume()
	if err != nil {
		return err
	}
	if _, err := v.writer(); err != nil {
		return fmt.Errorf("recording the patch in /%s: %w", PatchesDir, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "a -> b" stays readable for a person with cat
	enc.SetIndent("", "  ")
	if err := enc.Encode(rec); err != nil {
		return err
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	parts := strings.Split(PatchesDir, "/")
	for i := range parts {
		if err := makeDir(v, parts[:i+1]); err != nil {
			return err
		}
	}
	return writeBytes(v, append(parts, rec.ID), append(data, '\n'))
}

// writeBytes creates or replaces a small file.
func writeBytes(v *vol, path []string, data []byte) error {
	dir, err := parentOf(v, path)
	if err != nil {
		return err
	}
	a, err := v.fs.Lookup(dir, path[len(path)-1])
	if isNotExist(err) {
		a, err = v.w.Create(dir, path[len(path)-1], 0o644)
	}
	if err != nil {
		return err
	}
	if err := v.w.Truncate(a.Ino, 0); err != nil {
		return err
	}
	_, err = v.w.WriteAt(a.Ino, data, 0)
	return err
}

func sz(s string) []byte {
	u := utf16.Encode([]rune(s + "\x00"))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func multiSz(list []string) []byte {
	s := ""
	for _, l := range list {
		s += l + "\x00"
	}
	return sz(s)
}

func dword(n int) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(n))
}
