package tests

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestReport: the library report flags the Windows image (last updated in
// 2020, missing a required KB), the image nobody can open, and passes the
// up-to-date Linux image; the HTML page rendered by headless Chromium shows
// the chart and the table.
func TestReport(t *testing.T) {
	lib := t.TempDir()
	makeWindowsImage(t, filepath.Join(lib, "web01.img"))
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=Debian\nVERSION_ID=12\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "var", "lib", "dpkg"), 0o755)
	os.WriteFile(filepath.Join(root, "var", "lib", "dpkg", "status"), []byte("Package: libc6\nStatus: install ok installed\nVersion: 2.36\n"), 0o644)
	makeDisk(t, filepath.Join(lib, "db01.img"), "dos", []part{{sizeMiB: 16, typ: "83", fs: makeExt4(t, root, 16, "root")}})
	broken := filepath.Join(lib, "broken.img")
	sparseFile(t, broken, mib)
	mbr := make([]byte, 512)
	mbr[446+4], mbr[446+9], mbr[446+14] = 0x83, 0x08, 0x10
	mbr[510], mbr[511] = 0x55, 0xAA
	writeAt(t, broken, mbr, 0)

	html := filepath.Join(t.TempDir(), "report.html")
	out := mustOffvm(t, "report", "--max-age", "30", "--require", "KB4532691,KB5000001", "--html", html, lib)
	if !strings.Contains(out, "3 images, 2 need attention") {
		t.Errorf("summary line missing:\n%s", out)
	}
	var rep struct {
		Images []struct {
			Path    string   `json:"path"`
			Missing []string `json:"missing"`
			Issues  []string `json:"issues"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(mustOffvm(t, "report", "--json", "--max-age", "30", "--require", "KB4532691,KB5000001", lib)), &rep); err != nil {
		t.Fatal(err)
	}
	byName := map[string][]string{}
	for _, im := range rep.Images {
		byName[filepath.Base(im.Path)] = im.Issues
		if filepath.Base(im.Path) == "web01.img" && (len(im.Missing) != 1 || im.Missing[0] != "KB5000001") {
			t.Errorf("web01 missing %v, want [KB5000001]", im.Missing)
		}
	}
	if is := strings.Join(byName["web01.img"], ";"); !strings.Contains(is, "not updated for") || !strings.Contains(is, "KB5000001") {
		t.Errorf("web01 issues %q", is)
	}
	if is := strings.Join(byName["broken.img"], ";"); !strings.Contains(is, "cannot be opened") {
		t.Errorf("broken issues %q", is)
	}
	// db01's dpkg status was written just now: within 30 days
	if len(byName["db01.img"]) != 0 {
		t.Errorf("db01 flagged: %v", byName["db01.img"])
	}
	checkRendered(t, html)
}

// checkRendered screenshots the page in headless Chromium and looks for
// the chart's bars (the "> 1 year" red and the "≤ 30 days" green) and the
// flagged rows' background: what a person would see, not the HTML text.
func checkRendered(t *testing.T, html string) {
	testutil.RequireTool(t, "chromium", "chromium")
	shot := filepath.Join(t.TempDir(), "shot.png")
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--window-size=1400,1000", "--screenshot="+shot, "file://"+html)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]color.RGBA{
		"red bar (> 1 year)": {0xc6, 0x28, 0x28, 0xff},
		"green bar (≤ 30 d)": {0x2e, 0x7d, 0x32, 0xff},
		"flagged row":        {0xff, 0xf3, 0xf0, 0xff},
		"table header":       {0xee, 0xee, 0xee, 0xff},
	}
	for what, c := range want {
		if n := countColor(img, c); n < 200 {
			t.Errorf("screenshot: %s (%v) covers %d pixels; the page did not render it", what, c, n)
		}
	}
}

func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
				n++
			}
		}
	}
	return n
}
