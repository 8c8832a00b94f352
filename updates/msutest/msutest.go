// Package msutest builds update packages for tests the way Microsoft
// ships them, with Debian's gcab: a .msu is a cabinet holding
// WSUSSCAN.cab, the package cabinet Windows10.0-KB<n>-<arch>.cab (its
// update.mum and component manifests), a -pkgProperties.txt and an
// unattend-style .xml. Tests that use it skip without gcab.
package msutest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Spec is one package to build.
type Spec struct {
	KB          string // "KB4532691"
	Name        string // assemblyIdentity name: Package_for_RollupFix, Package_for_ServicingStack_1039, ...
	Version     string // "17763.1039.1.4"
	Arch        string // "amd64"
	ParentBuild int    // 17763: the parent Foundation package 10.0.<build>.<ParentRevision>
	// ParentRevision is the revision the image must have at least
	// (revisionCompare="GE"); 0 means 1, the build's first release.
	ParentRevision int
	ReleaseType    string // "Security Update", "Update"
	Restart        string // "possible", "required"
	Product        string // "Windows Server 2019"
	Compress       bool   // MSZIP (gcab -z); stored otherwise
}

// Mum is the update.mum of the spec, shaped like a cumulative update's.
func (s Spec) Mum() string {
	n := strings.TrimPrefix(s.KB, "KB")
	return "\ufeff" + `<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<assembly xmlns="urn:schemas-microsoft-com:asm.v3" manifestVersion="1.0" description="Fix for ` + s.KB + `" displayName="default" company="Microsoft Corporation" copyright="Microsoft Corporation" supportInformation="http://support.microsoft.com/?kbid=` + n + `" creationTimeStamp="2020-02-06T04:18:13Z" lastUpdateTimeStamp="2020-02-06T04:18:13Z">
  <assemblyIdentity name="` + s.Name + `" version="` + s.Version + `" processorArchitecture="` + s.Arch + `" language="neutral" buildType="release" publicKeyToken="31bf3856ad364e35" />
  <package identifier="` + s.KB + `" releaseType="` + s.ReleaseType + `" restart="` + s.Restart + `" targetPartition="MainOS" binaryPartition="false" permanence="removable">
    <parent buildCompare="EQ" revisionCompare="GE" integrate="separate" disposition="detect">
      <assemblyIdentity name="Microsoft-Windows-Foundation-Package" version="10.0.` + fmt.Sprint(s.ParentBuild) + `.` + fmt.Sprint(max(s.ParentRevision, 1)) + `" processorArchitecture="` + s.Arch + `" language="neutral" buildType="release" publicKeyToken="31bf3856ad364e35" />
    </parent>
    <update name="` + s.KB + `-1_neutral_GDR">
      <package integrate="hidden">
        <assemblyIdentity name="Package_1_for_` + s.KB + `" version="` + s.Version + `" processorArchitecture="` + s.Arch + `" language="neutral" buildType="release" publicKeyToken="31bf3856ad364e35" />
      </package>
    </update>
  </package>
</assembly>
`
}

func (s Spec) props() string {
	n := strings.TrimPrefix(s.KB, "KB")
	lines := []string{
		`ApplicabilityInfo="Windows 10.0;"`, `Applies to="` + s.Product + `"`, `Build Date="2020/02/06"`,
		`Company="Microsoft Corporation"`, `File Version="10.0.` + s.Version + `"`, `Installation Type="FULL"`,
		`Installer Engine="Component Based Servicing"`, `Installer Version="10.0.` + s.Version + `"`,
		`KB Article Number="` + n + `"`, `Language="ALL"`, `Package Type="` + s.ReleaseType + `"`,
		`Processor Architecture="` + s.Arch + `"`, `Product Name="` + s.Product + `"`,
		`Support Link="http://support.microsoft.com/?kbid=` + n + `"`,
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

func (s Spec) base() string {
	a := map[string]string{"amd64": "x64", "x86": "x86", "arm64": "arm64"}[s.Arch]
	return "Windows10.0-" + s.KB + "-" + a
}

// Gcab runs gcab -c in dir over files, into out.
func Gcab(t testing.TB, out, dir string, compress bool, files ...string) {
	t.Helper()
	args := []string{"-c"}
	if compress {
		args = append(args, "-z")
	}
	args = append(args, out)
	args = append(args, files...)
	cmd := exec.Command("gcab", args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcab %v: %v\n%s", args, err, b)
	}
}

// Need skips the test without gcab.
func Need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("gcab"); err != nil {
		t.Skip("gcab not installed (apt-get install gcab)")
	}
}

// CAB builds the package cabinet (update.mum and a component manifest)
// in dir and returns its path.
func (s Spec) CAB(t testing.TB, dir string) string {
	t.Helper()
	Need(t)
	src := t.TempDir()
	write(t, filepath.Join(src, "update.mum"), s.Mum())
	comp := s.Arch + "_microsoft-windows-offvmtest_31bf3856ad364e35_10.0." + s.Version + "_none_0123456789abcdef.manifest"
	write(t, filepath.Join(src, comp), strings.Repeat("<assembly component payload/>\r\n", 2000))
	out := filepath.Join(dir, s.base()+".cab")
	Gcab(t, out, src, s.Compress, "update.mum", comp)
	return out
}

// MSU builds the .msu in dir and returns its path.
func (s Spec) MSU(t testing.TB, dir string) string {
	t.Helper()
	Need(t)
	src := t.TempDir()
	s.CAB(t, src)
	write(t, filepath.Join(src, "package.xml"), `<?xml version="1.0"?><OfflineSyncPackage xmlns="http://schemas.microsoft.com/msus/2004/02/OfflineSync"/>`)
	Gcab(t, filepath.Join(src, "WSUSSCAN.cab"), src, true, "package.xml")
	write(t, filepath.Join(src, s.base()+"-pkgProperties.txt"), s.props())
	write(t, filepath.Join(src, s.base()+".xml"), `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend"><servicing><package action="install"><assemblyIdentity name="`+s.Name+`" version="`+s.Version+`" language="neutral" processorArchitecture="`+s.Arch+`" publicKeyToken="31bf3856ad364e35"/><source location="%configsetroot%\`+s.base()+`.cab" /></package></servicing></unattend>`)
	out := filepath.Join(dir, s.base()+".msu")
	Gcab(t, out, src, s.Compress, "WSUSSCAN.cab", s.base()+".cab", s.base()+"-pkgProperties.txt", s.base()+".xml")
	return out
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Cases are one package per case the issue names, for build 17763 and
// 20348 images. An image whose CBS has Package_for_RollupFix 17763.1039
// installed has LCU installed and Superseded superseded.
var (
	LCU17763 = Spec{KB: "KB4532691", Name: "Package_for_RollupFix", Version: "17763.1039.1.4", Arch: "amd64", ParentBuild: 17763,
		ReleaseType: "Security Update", Restart: "possible", Product: "Windows Server 2019", Compress: true}
	LCU17763New = Spec{KB: "KB5034439", Name: "Package_for_RollupFix", Version: "17763.5329.1.9", Arch: "amd64", ParentBuild: 17763,
		ReleaseType: "Security Update", Restart: "required", Product: "Windows Server 2019", Compress: true}
	Superseded = Spec{KB: "KB4524148", Name: "Package_for_RollupFix", Version: "17763.914.1.5", Arch: "amd64", ParentBuild: 17763,
		ReleaseType: "Security Update", Restart: "possible", Product: "Windows Server 2019"}
	SSU17763 = Spec{KB: "KB5005112", Name: "Package_for_ServicingStack_2090", Version: "17763.2090.1.1", Arch: "amd64", ParentBuild: 17763,
		ReleaseType: "Update", Restart: "never", Product: "Windows Server 2019", Compress: true}
	LCU20348 = Spec{KB: "KB5034129", Name: "Package_for_RollupFix", Version: "20348.2227.1.5", Arch: "amd64", ParentBuild: 20348,
		ReleaseType: "Security Update", Restart: "possible", Product: "Windows Server 2022", Compress: true}
)
