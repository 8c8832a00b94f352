package updates

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Identity is a CBS assemblyIdentity: the package's name, four-part
// version, architecture, language and public key token.
type Identity struct {
	Name           string `xml:"name,attr" json:"name"`
	Version        string `xml:"version,attr" json:"version"`
	Arch           string `xml:"processorArchitecture,attr" json:"arch"`
	Language       string `xml:"language,attr" json:"language"`
	PublicKeyToken string `xml:"publicKeyToken,attr" json:"public_key_token"`
}

// Key is the name CBS gives the package's registry key:
// name~token~arch~language~version, with "neutral" written as empty.
func (id Identity) Key() string {
	lang := id.Language
	if strings.EqualFold(lang, "neutral") {
		lang = ""
	}
	return strings.Join([]string{id.Name, id.PublicKeyToken, id.Arch, lang, id.Version}, "~")
}

// mum is the part of update.mum (urn:schemas-microsoft-com:asm.v3) we read.
type mum struct {
	XMLName  xml.Name `xml:"assembly"`
	Support  string   `xml:"supportInformation,attr"`
	Identity Identity `xml:"assemblyIdentity"`
	Package  struct {
		Identifier  string `xml:"identifier,attr"`
		ReleaseType string `xml:"releaseType,attr"`
		Restart     string `xml:"restart,attr"`
		Parent      []struct {
			BuildCompare    string   `xml:"buildCompare,attr"`
			RevisionCompare string   `xml:"revisionCompare,attr"`
			Identity        Identity `xml:"assemblyIdentity"`
		} `xml:"parent"`
	} `xml:"package"`
}

// Manifest is what update.mum says of a package.
type Manifest struct {
	Identity    Identity
	KB          string // "KB4532691"
	ReleaseType string // "Security Update", "Update", ...
	Restart     string // "possible", "required", "never" ("" = not said)
	// Parents are the packages it applies on top of (the first one that
	// matches decides); ParentBuild is the build of the first (0 = any).
	Parents     []Identity
	ParentBuild int
	// BuildCompare is how the parent's build must compare ("EQ", "GE").
	BuildCompare string
	// ParentRevision is the parent's revision (the 1 of 10.0.17763.1)
	// and RevisionCompare how the image's UBR must compare with it
	// ("GE", "EQ"; "" = not said).
	ParentRevision  int
	RevisionCompare string
}

var kbPattern = regexp.MustCompile(`(?i)KB(\d{6,8})`)

// parseMum reads update.mum; name is used in errors.
func parseMum(data []byte, name string) (*Manifest, error) {
	var m mum
	d := xml.NewDecoder(bytes.NewReader(utf8XML(data)))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: not a package manifest: %w", name, err)
	}
	id := m.Identity
	if id.Name == "" || id.Version == "" {
		return nil, fmt.Errorf("%s: the manifest has no assemblyIdentity name and version", name)
	}
	if _, err := parseVersion(id.Version); err != nil {
		return nil, fmt.Errorf("%s: assemblyIdentity version: %w", name, err)
	}
	out := &Manifest{Identity: id, ReleaseType: m.Package.ReleaseType, Restart: m.Package.Restart}
	for _, s := range []string{m.Package.Identifier, id.Name, m.Support} {
		if k := kbPattern.FindStringSubmatch(s); k != nil {
			out.KB = "KB" + k[1]
			break
		}
	}
	for i, p := range m.Package.Parent {
		out.Parents = append(out.Parents, p.Identity)
		if i == 0 {
			out.BuildCompare = strings.ToUpper(p.BuildCompare)
			out.RevisionCompare = strings.ToUpper(p.RevisionCompare)
			if v, err := parseVersion(p.Identity.Version); err == nil && len(v) >= 3 {
				out.ParentBuild = v[2] // 10.0.17763.1
				if len(v) == 4 {
					out.ParentRevision = v[3]
				}
			}
		}
	}
	return out, nil
}

// utf8XML turns a UTF-16LE manifest (with BOM) into UTF-8 and drops a
// UTF-8 BOM; encoding/xml reads only UTF-8.
func utf8XML(b []byte) []byte {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
		}
		b = []byte(string(utf16Decode(u)))
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	// the declaration may name UTF-16 or another charset; we have UTF-8 now
	if bytes.HasPrefix(b, []byte("<?xml")) {
		if i := bytes.Index(b, []byte("?>")); i > 0 {
			b = b[i+2:]
		}
	}
	return b
}

// parseVersion splits a dotted version into numbers.
func parseVersion(s string) ([]int, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return nil, fmt.Errorf("%q is not a dotted version", s)
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted version", s)
		}
		out[i] = n
	}
	return out, nil
}

// compareVersions orders two dotted versions (missing parts are 0).
func compareVersions(a, b string) int {
	va, _ := parseVersion(a)
	vb, _ := parseVersion(b)
	for i := 0; i < 4; i++ {
		x, y := at(va, i), at(vb, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func at(v []int, i int) int {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// parseProperties reads a -pkgProperties.txt: Key="Value" lines
// (UTF-16LE with BOM or UTF-8).
func parseProperties(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(utf8XML(data)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return out
}

func utf16Decode(u []uint16) []rune { return utf16.Decode(u) }
