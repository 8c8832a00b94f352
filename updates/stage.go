package updates

import (
	"debug/pe"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/patcher"
)

// Where staging puts things, below the system volume's Windows folder.
const (
	ServiceName = "offvm-firstboot"
	exeName     = "offvm-firstboot.exe"
)

// The outcomes of staging into one image.
const (
	StagedNow   = "staged"
	WouldStage  = "would stage"
	NothingToDo = "nothing to stage"
	StageFailed = "failed"
)

// StageOptions say how Stage runs.
type StageOptions struct {
	DryRun bool
	// Firstboot is offvm-firstboot.exe built for Windows amd64 (FirstbootPath
	// finds it when empty).
	Firstboot string
	Now       func() time.Time
	TmpDir    string
}

// StageResult is what staging did to one image.
type StageResult struct {
	Image    string           `json:"image"`
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	Staged   []string         `json:"staged,omitempty"` // KBs
	Verdicts []Verdict        `json:"updates,omitempty"`
	Pending  []string         `json:"reboot_pending,omitempty"`
	Changes  []patcher.Change `json:"changes,omitempty"`
}

// FirstbootPath finds offvm-firstboot.exe: $OFFVM_FIRSTBOOT, or beside
// the offvm executable (where `make` puts it).
func FirstbootPath() (string, error) {
	if p := os.Getenv("OFFVM_FIRSTBOOT"); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), exeName)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: not found (make builds it beside offvm; or set OFFVM_FIRSTBOOT): %w", p, err)
	}
	return p, nil
}

// CheckFirstboot refuses a file that is not a Windows program for arch.
func CheckFirstboot(path, arch string) error {
	f, err := pe.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not a Windows program: %w", path, err)
	}
	defer f.Close()
	if arch == "" {
		return fmt.Errorf("the image's architecture is not known (no PROCESSOR_ARCHITECTURE in its SYSTEM hive), so no first-boot program can be chosen")
	}
	want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64, "x86": pe.IMAGE_FILE_MACHINE_I386}[arch]
	if want == 0 || f.Machine != want {
		return fmt.Errorf("%s: built for machine 0x%x, the image is %s", path, f.Machine, arch)
	}
	return nil
}

// Stage stages the packages each image needs: one transaction per image
// (a patch bundle offvm builds for it), idempotent, undone by rollback.
func Stage(pkgs []*Package, imgs []patcher.Image, jobs int, opts StageOptions) []StageResult {
	out := make([]StageResult, len(imgs))
	workers.Each(len(imgs), jobs, func(i int) { out[i] = stageOne(pkgs, imgs[i], opts) })
	return out
}

func stageOne(pkgs []*Package, img patcher.Image, opts StageOptions) (res StageResult) {
	res = StageResult{Image: img.Path}
	fail := func(err error) StageResult {
		res.Status, res.Reason = StageFailed, err.Error()
		return res
	}
	var msg string
	defer func() {
		if msg != "" {
			res.Status, res.Reason = StageFailed, msg
		}
	}()
	defer recoverInto(img.Path, &msg)
	if img.Err != nil {
		return fail(img.Err)
	}
	if img.Mount != "" {
		return fail(fmt.Errorf("%s is mounted at %s: staging writes the image file as one transaction, which a mount cannot give; run offvm unmount %s first, then stage again", img.Path, img.Mount, patcher.MountRoot(img.Mount)))
	}
	plan, err := planStage(pkgs, img.Path)
	if err != nil {
		return fail(err)
	}
	res.Verdicts, res.Pending = plan.verdicts, plan.facts.Pending
	if len(plan.needed) == 0 {
		res.Status = NothingToDo
		return res
	}
	if img.ReadOnly != "" && !opts.DryRun {
		return fail(fmt.Errorf("cannot write: %s", img.ReadOnly))
	}
	dir, err := os.MkdirTemp(opts.TmpDir, "offvm-stage-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := plan.writeBundle(dir, opts.Firstboot, now()); err != nil {
		return fail(err)
	}
	b, err := patcher.LoadBundle(dir)
	if err != nil {
		return fail(err)
	}
	r := patcher.Apply(img.Path, b, patcher.Options{DryRun: opts.DryRun, ReadOnlyReason: img.ReadOnly, Now: opts.Now, TmpDir: opts.TmpDir})
	res.Changes = r.Changes
	switch r.Status {
	case patcher.Applied:
		res.Status = StagedNow
	case patcher.WouldApply:
		res.Status = WouldStage
	default:
		res.Status, res.Reason = StageFailed, r.Reason
		return res
	}
	for _, p := range plan.needed {
		res.Staged = append(res.Staged, p.KB)
	}
	return res
}

// stagePlan is one image's facts and the packages it needs.
type stagePlan struct {
	facts    Facts
	sysPart  string // "p3"
	verdicts []Verdict
	needed   []*Package
}

func planStage(pkgs []*Package, image string) (*stagePlan, error) {
	im, err := mount.Open(image, mount.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	return planStageImage(pkgs, im, image)
}

// planStageImage decides the packages for an opened image.
func planStageImage(pkgs []*Package, im *mount.Image, image string) (*stagePlan, error) {
	f, err := ReadFacts(im)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	p := &stagePlan{facts: f, verdicts: DecideAll(pkgs, f)}
	if o, ok := inspect.Describe(im).OS.(*inspect.OS); ok && o != nil {
		p.sysPart = o.SystemPartition
	}
	for i, v := range p.verdicts {
		if v.Status == Needed {
			p.needed = append(p.needed, pkgs[i])
		}
	}
	// servicing stack first, then by KB, so the bundle is the same each time
	sort.SliceStable(p.needed, func(i, j int) bool {
		a, b := p.needed[i], p.needed[j]
		if a.ServicingStack != b.ServicingStack {
			return a.ServicingStack
		}
		return a.KB < b.KB
	})
	if len(p.needed) > 0 && p.sysPart == "" {
		return nil, fmt.Errorf("%s: the Windows system partition is not known", image)
	}
	return p, nil
}

// writeBundle lays out the bundle that stages the needed packages:
// the packages and offvm-firstboot.exe under files/pN/Windows/offvm/,
// the service in the current control set, and the Staged records.
func (p *stagePlan) writeBundle(dir, firstboot string, now time.Time) error {
	if firstboot == "" {
		var err error
		if firstboot, err = FirstbootPath(); err != nil {
			return err
		}
	}
	if err := CheckFirstboot(firstboot, p.facts.Arch); err != nil {
		return err
	}
	var kbs []string
	for _, pk := range p.needed {
		kbs = append(kbs, pk.KB)
	}
	id := "offvm-updates-" + strings.Join(kbs, "-")
	if len(id) > 120 {
		id = id[:120]
	}
	toml := fmt.Sprintf("id = %q\ntitle = %q\n\n[applies]\nos = \"windows\"\n", id, "offvm staged updates: "+strings.Join(kbs, ", "))
	if err := os.WriteFile(filepath.Join(dir, "patch.toml"), []byte(toml), 0o644); err != nil {
		return err
	}
	base := filepath.Join(dir, "files", p.sysPart, "Windows", "offvm")
	if err := linkOrCopy(firstboot, filepath.Join(base, exeName)); err != nil {
		return err
	}
	for _, pk := range p.needed {
		if err := linkOrCopy(pk.Path, filepath.Join(base, "staged", pk.KB, filepath.Base(pk.Path))); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "registry"), 0o755); err != nil {
		return err
	}
	reg := serviceReg(p.facts.ControlSet) + stagedReg(p.needed, now)
	return os.WriteFile(filepath.Join(dir, "registry", "10-offvm-updates.reg"), []byte(reg), 0o644)
}

// serviceReg registers offvm-firstboot: its own process, automatic
// start, LocalSystem, ImagePath below %SystemRoot%.
func serviceReg(cs string) string {
	return "Windows Registry Editor Version 5.00\r\n\r\n" +
		`[HKEY_LOCAL_MACHINE\SYSTEM\` + cs + `\Services\` + ServiceName + "]\r\n" +
		"\"Type\"=dword:00000010\r\n" +
		"\"Start\"=dword:00000002\r\n" +
		"\"ErrorControl\"=dword:00000001\r\n" +
		"\"ImagePath\"=" + expandSz(`%SystemRoot%\offvm\`+exeName) + "\r\n" +
		"\"ObjectName\"=\"LocalSystem\"\r\n" +
		"\"DisplayName\"=\"offvm first-boot update installer\"\r\n" +
		"\"Description\"=\"Installs the updates offvm staged with DISM, records the results in HKLM\\\\SOFTWARE\\\\offvm\\\\Staged, then removes itself.\"\r\n\r\n"
}

// stagedReg records each staged package for offvm-firstboot and scan.
func stagedReg(pkgs []*Package, now time.Time) string {
	var b strings.Builder
	for i, pk := range pkgs {
		ssu := 0
		if pk.ServicingStack {
			ssu = 1
		}
		fmt.Fprintf(&b, "[HKEY_LOCAL_MACHINE\\SOFTWARE\\offvm\\Staged\\%s]\r\n", pk.KB)
		fmt.Fprintf(&b, "\"State\"=\"staged\"\r\n\"File\"=%s\r\n\"Package\"=%s\r\n", regQuote(filepath.Base(pk.Path)), regQuote(pk.Identity.Key()))
		fmt.Fprintf(&b, "\"Order\"=dword:%08x\r\n\"ServicingStack\"=dword:%08x\r\n\"Restart\"=%s\r\n", i, ssu, regQuote(pk.Restart))
		fmt.Fprintf(&b, "\"StagedAt\"=%s\r\n\"Attempts\"=\"0\"\r\n\r\n", regQuote(now.UTC().Format(time.RFC3339)))
	}
	return b.String()
}

func regQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// expandSz spells a REG_EXPAND_SZ as regedit does: hex(2), UTF-16LE, NUL.
func expandSz(s string) string {
	var parts []string
	for _, r := range s + "\x00" {
		parts = append(parts, fmt.Sprintf("%02x,%02x", byte(r), byte(r>>8)))
	}
	return "hex(2):" + strings.Join(parts, ",")
}

// linkOrCopy puts src at dst, hard-linked when the file systems allow
// (packages can be large), copied otherwise.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}
