// Package keys reads the secrets file given with --keys: the recovery
// passwords, passphrases and key files that unlock encrypted guest volumes
// (BitLocker, LUKS). Secrets stay in memory; nothing here logs them.
//
// One secret a line; blank lines and lines starting with # are skipped:
//
//	123456-123456-123456-123456-123456-123456-123456-123456   a BitLocker recovery password
//	password:TEXT         a BitLocker user password
//	bek:PATH              a BitLocker startup or recovery key file (.BEK)
//	passphrase:TEXT       a LUKS passphrase
//	keyfile:PATH          a LUKS key file
//
// Each may follow a selector and one space: a volume GUID (BitLocker's
// volume GUID or the LUKS UUID, braces optional, any case) or a glob on the
// volume's description (the BitLocker description such as
// "DESKTOP-1 C: 12/1/2026", or the LUKS label). A secret without a selector
// is tried on every volume.
package keys

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Kind is what a secret is.
type Kind string

const (
	Recovery   Kind = "recovery"   // BitLocker 48-digit recovery password
	Password   Kind = "password"   // BitLocker user password
	BEK        Kind = "bek"        // BitLocker key file, contents in Value
	Passphrase Kind = "passphrase" // LUKS passphrase
	KeyFile    Kind = "keyfile"    // LUKS key file, contents in Value
)

// Secret is one line of the file.
type Secret struct {
	Kind Kind
	// Selector is "" (any volume), a GUID (lower case, no braces) or a glob.
	Selector string
	// Value is the secret itself: the recovery password with its dashes,
	// the text of a password or passphrase, or the bytes of a key file.
	Value []byte
	// Line is where the secret is in the file, for messages that must
	// name it without showing it.
	Line int
}

// String never shows the secret.
func (s Secret) String() string { return fmt.Sprintf("%s secret (line %d)", s.Kind, s.Line) }

// Set is the secrets of one file. The zero Set and a nil *Set hold none.
type Set struct {
	File    string
	Secrets []Secret
}

var (
	guidRe     = regexp.MustCompile(`^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$`)
	recoveryRe = regexp.MustCompile(`^[0-9]{6}(-[0-9]{6}){7}$`)
)

// Load reads a secrets file. Like ssh with a private key, it refuses a
// file that its group or others may read or write.
func Load(file string) (*Set, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", file, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keys file %s: mode %04o lets others read it; chmod 600 it", file, st.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", file, err)
	}
	return Parse(file, data)
}

// Parse reads the file's text; file names it in errors and is the base
// for relative bek: and keyfile: paths.
func Parse(file string, data []byte) (*Set, error) {
	set := &Set{File: file}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseLine(file, line, n)
		if err != nil {
			return nil, err
		}
		set.Secrets = append(set.Secrets, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", file, err)
	}
	return set, nil
}

func parseLine(file, line string, n int) (Secret, error) {
	s := Secret{Line: n}
	if sel, rest, ok := strings.Cut(line, " "); ok && !hasKindPrefix(sel) && !recoveryRe.MatchString(sel) {
		s.Selector = normSelector(sel)
		line = strings.TrimSpace(rest)
	}
	kind, val, ok := strings.Cut(line, ":")
	switch {
	case recoveryRe.MatchString(line):
		s.Kind, s.Value = Recovery, []byte(line)
		return s, nil
	case ok && (Kind(kind) == Password || Kind(kind) == Passphrase):
		s.Kind, s.Value = Kind(kind), []byte(val)
		return s, nil
	case ok && (Kind(kind) == BEK || Kind(kind) == KeyFile):
		p := val
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return s, fmt.Errorf("keys file %s line %d: %s: %w", file, n, kind, err)
		}
		s.Kind, s.Value = Kind(kind), b
		return s, nil
	}
	return s, fmt.Errorf("keys file %s line %d: not a recovery password, password:, bek:, passphrase: or keyfile: line", file, n)
}

func hasKindPrefix(s string) bool {
	for _, k := range []Kind{Password, BEK, Passphrase, KeyFile} {
		if strings.HasPrefix(s, string(k)+":") {
			return true
		}
	}
	return false
}

func normSelector(sel string) string {
	if guidRe.MatchString(sel) {
		return strings.ToLower(strings.Trim(sel, "{}"))
	}
	return sel
}

// For returns the secrets that may unlock the volume with this GUID and
// description, of the given kinds (all kinds when none are given):
// secrets selected for this volume first, then those without a selector.
func (s *Set) For(guid, description string, kinds ...Kind) []Secret {
	if s == nil {
		return nil
	}
	guid = strings.ToLower(strings.Trim(guid, "{}"))
	var picked, any []Secret
	for _, sec := range s.Secrets {
		if len(kinds) > 0 && !hasKind(kinds, sec.Kind) {
			continue
		}
		switch {
		case sec.Selector == "":
			any = append(any, sec)
		case guid != "" && sec.Selector == guid:
			picked = append(picked, sec)
		case matchGlob(sec.Selector, description):
			picked = append(picked, sec)
		}
	}
	return append(picked, any...)
}

func hasKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func matchGlob(pattern, s string) bool {
	if s == "" {
		return false
	}
	// path.Match's * stops at '/', and descriptions hold dates with slashes
	slash := func(x string) string { return strings.ReplaceAll(x, "/", "\x00") }
	ok, err := path.Match(slash(pattern), slash(s))
	return err == nil && ok
}
