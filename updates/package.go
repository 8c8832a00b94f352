package updates

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxManifest bounds update.mum and pkgProperties.txt (real ones are a
// few KiB; a cumulative update's mum is under 1 MiB).
const maxManifest = 16 << 20

// Package is one update package as read from its file.
type Package struct {
	Path string `json:"file"`
	// Kind is "msu" (a cabinet of cabinets) or "cab" (a CBS package).
	Kind         string   `json:"kind"`
	KB           string   `json:"kb"`
	Identity     Identity `json:"identity"`
	ReleaseType  string   `json:"release_type"`
	Restart      string   `json:"restart"`
	ParentBuild  int      `json:"parent_build"`
	BuildCompare string   `json:"build_compare"`
	// ParentRevision and RevisionCompare: the UBR the image must have
	// (revisionCompare of update.mum's parent; "" = any).
	ParentRevision  int    `json:"parent_revision,omitempty"`
	RevisionCompare string `json:"revision_compare,omitempty"`
	ServicingStack  bool   `json:"servicing_stack"`
	AppliesTo       string `json:"applies_to,omitempty"`
	// Inner is the .msu's package cabinet (Windows10.0-KB...-x64.cab).
	Inner string `json:"inner,omitempty"`
	Size  int64  `json:"size"`
	// parentEdition is the edition a parent package names ("" = any).
	parentEdition string
}

// OpenPackage reads a .msu or .cab update package: every cabinet it
// holds must parse and its manifest must be whole, or it is refused
// naming the file and the cause (before any image is touched).
func OpenPackage(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	c, err := OpenCabinet(f, st.Size(), path)
	if err != nil {
		return nil, err
	}
	p := &Package{Path: path, Size: st.Size(), Kind: "cab"}
	var m *Manifest
	if mf := c.Find("update.mum"); mf != nil {
		m, err = readMum(c, mf, path)
	} else {
		p.Kind = "msu"
		m, err = p.readMSU(c)
	}
	if err != nil {
		return nil, err
	}
	p.fill(m)
	if p.KB == "" {
		return nil, fmt.Errorf("%s: no KB number in the manifest or the package's name", path)
	}
	return p, nil
}

func readMum(c *Cabinet, f *CabFile, name string) (*Manifest, error) {
	data, err := c.ReadFile(f, maxManifest)
	if err != nil {
		return nil, err
	}
	return parseMum(data, name+": update.mum")
}

// readMSU finds the package cabinet inside the .msu (the cabinet that
// is not WSUSSCAN.cab), copies it out and reads its update.mum, and the
// pkgProperties.txt beside it.
func (p *Package) readMSU(c *Cabinet) (*Manifest, error) {
	var inner *CabFile
	for i := range c.Files {
		n := strings.ToLower(c.Files[i].Name)
		switch {
		case strings.HasSuffix(n, ".cab") && n != "wsusscan.cab" && inner == nil:
			inner = &c.Files[i]
		case strings.HasSuffix(n, "-pkgproperties.txt"):
			if data, err := c.ReadFile(&c.Files[i], maxManifest); err == nil {
				props := parseProperties(data)
				p.AppliesTo = props["Applies to"]
				if p.KB == "" && props["KB Article Number"] != "" {
					p.KB = "KB" + props["KB Article Number"]
				}
			} else {
				return nil, err
			}
		}
	}
	if inner == nil {
		return nil, fmt.Errorf("%s: not an update package: no update.mum (as a .cab package has) and no package cabinet besides WSUSSCAN.cab (as an .msu has)", p.Path)
	}
	p.Inner = inner.Name
	tmp, err := os.CreateTemp("", "offvm-msu-*.cab")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	r, err := c.Open(inner)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, err
	}
	name := p.Path + ": " + inner.Name
	ic, err := OpenCabinet(tmp, inner.Size, name)
	if err != nil {
		return nil, err
	}
	mf := ic.Find("update.mum")
	if mf == nil {
		return nil, fmt.Errorf("%s: no update.mum: not a servicing package", name)
	}
	return readMum(ic, mf, name)
}

func (p *Package) fill(m *Manifest) {
	p.Identity, p.ReleaseType, p.Restart = m.Identity, m.ReleaseType, m.Restart
	p.ParentBuild, p.BuildCompare = m.ParentBuild, m.BuildCompare
	p.ParentRevision, p.RevisionCompare = m.ParentRevision, m.RevisionCompare
	if m.KB != "" {
		p.KB = m.KB
	}
	if p.KB == "" {
		if k := kbPattern.FindStringSubmatch(filepath.Base(p.Path)); k != nil {
			p.KB = "KB" + k[1]
		}
	}
	for _, par := range m.Parents {
		n := par.Name
		if strings.HasPrefix(n, "Microsoft-Windows-") && strings.HasSuffix(n, "Edition") {
			p.parentEdition = strings.TrimSuffix(strings.TrimPrefix(n, "Microsoft-Windows-"), "Edition")
		}
	}
	p.ServicingStack = strings.Contains(strings.ToLower(p.Identity.Name), "servicingstack") ||
		strings.Contains(strings.ToLower(p.ReleaseType), "servicing stack")
}
