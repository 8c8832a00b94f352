package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// makeHive builds a hive with hivexregedit --merge from regedit text whose
// keys start with prefix (e.g. HKEY_LOCAL_MACHINE\SOFTWARE). The empty
// starting hive is offvm's (hivex cannot create one); hivex fills it and
// the test reads back through hivex.
func makeHive(t *testing.T, prefix, reg string) string {
	t.Helper()
	testutil.RequireTool(t, "hivexregedit", "libwin-hivex-perl")
	data, err := hive.New("ROOT").Serialize()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "hive")
	must(t, os.WriteFile(p, data, 0o644))
	regFile := filepath.Join(dir, "in.reg")
	must(t, os.WriteFile(regFile, []byte("Windows Registry Editor Version 5.00\n\n"+withParents(prefix, reg)), 0o644))
	cmd := exec.Command("hivexregedit", "--merge", "--prefix", prefix, p, regFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hivexregedit --merge: %v\n%s", err, out)
	}
	return p
}

// withParents adds an empty section for every missing ancestor of each
// key: hivexregedit creates a key only under an existing parent.
func withParents(prefix, reg string) string {
	seen := map[string]bool{strings.ToLower(prefix): true}
	var b strings.Builder
	for _, line := range strings.Split(reg, "\n") {
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			key := line[1 : len(line)-1]
			parts := strings.Split(key, `\`)
			for i := range parts {
				k := strings.Join(parts[:i+1], `\`)
				if len(k) <= len(prefix) || seen[strings.ToLower(k)] {
					continue
				}
				seen[strings.ToLower(k)] = true
				if k != key {
					b.WriteString("[" + k + "]\n\n")
				}
			}
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// windowsHives is realistic content for SYSTEM and SOFTWARE.
const systemReg = `[HKEY_LOCAL_MACHINE\SYSTEM\Select]
"Current"=dword:00000001
"Default"=dword:00000001

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\ComputerName\ComputerName]
"ComputerName"="WEB01"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Tcpip\Parameters]
"Hostname"="web01"
"Domain"="corp.example"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Session Manager\Environment]
"PROCESSOR_ARCHITECTURE"="AMD64"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Spooler]
"Start"=dword:00000002
"ImagePath"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,00,25,00,00,00
"DependOnService"=hex(7):52,00,50,00,43,00,53,00,53,00,00,00,68,00,74,00,74,00,70,00,00,00,00,00
"Blob"=hex:01,02,03,ff

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Odd/Name]
@="default value"
"50%"=dword:00000032

[HKEY_LOCAL_MACHINE\SYSTEM\MountedDevices]
"\\DosDevices\\C:"=hex:44,4d,49,4f,3a,49,44,3a,b2,c6,e4,b5,1f,3d,2b,4c,9a,3e,12,34,56,78,90,ab
"\\DosDevices\\E:"=hex:44,4d,49,4f,3a,49,44,3a,00,00,00,00,00,00,00,00,00,00,00,00,00,00,00,01
`

// ntfsGUID is the GPT GUID of the Windows partition, as MountedDevices
// above records it for C: (E: names a partition that is not there).
const ntfsGUID = "B5E4C6B2-3D1F-4C2B-9A3E-1234567890AB"

const softwareReg = `[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion]
"ProductName"="Windows Server 2019 Standard"
"EditionID"="ServerStandard"
"CurrentBuild"="17763"
"CurrentBuildNumber"="17763"
"CurrentMajorVersionNumber"=dword:0000000a
"CurrentMinorVersionNumber"=dword:00000000
"UBR"=dword:00000fa2
"InstallationType"="Server"
"InstallDate"=dword:5e0e5e80

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\S-1-5-21-1-2-3-1001]
"ProfileImagePath"=hex(2):43,00,3a,00,5c,00,55,00,73,00,65,00,72,00,73,00,5c,00,61,00,6c,00,69,00,63,00,65,00,00,00

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\ContosoAgent]
"DisplayName"="Contoso Agent"
"DisplayVersion"="1.2.3"
"Publisher"="Contoso"

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages\Package_for_KB4532691~31bf3856ad364e35~amd64~~17763.1039.1.4]
"CurrentState"=dword:00000070
"InstallTimeHigh"=dword:01d5e0b1
"InstallTimeLow"=dword:42180000
`

const ntuserReg = `[HKEY_CURRENT_USER\Software\Contoso]
"Theme"="dark"
`

// makeWindowsImage builds a GPT disk shaped like a Windows install: an EFI
// FAT32 partition, an MSR without a file system, and an NTFS volume filled
// through ntfs-3g with Windows\System32\config hives made by hivex and a
// user profile.
func makeWindowsImage(t *testing.T, path string) {
	t.Helper()
	system := makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, systemReg)
	software := makeHive(t, `HKEY_LOCAL_MACHINE\SOFTWARE`, softwareReg)
	ntuser := makeHive(t, `HKEY_CURRENT_USER`, ntuserReg)
	efiSrc := t.TempDir()
	writeFile(t, filepath.Join(efiSrc, "EFI", "Boot", "bootx64.efi"), 4000)
	fat := makeFAT(t, efiSrc, 40, 32, "SYSTEM")
	ntfs := makeNTFS(t, 64, "Windows", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", system, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", software, filepath.Join(cfg, "SOFTWARE"))
		must(t, os.WriteFile(filepath.Join(cfg, "SYSTEM.LOG1"), nil, 0o644))
		must(t, os.MkdirAll(filepath.Join(dir, "Windows", "System32", "drivers", "etc"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "Windows", "System32", "drivers", "etc", "hosts"), []byte("127.0.0.1 localhost\r\n"), 0o644))
		must(t, os.MkdirAll(filepath.Join(dir, "Users", "alice"), 0o755))
		run(t, "cp", ntuser, filepath.Join(dir, "Users", "alice", "NTUSER.DAT"))
	})
	makeDisk(t, path, "gpt", []part{
		{sizeMiB: 40, typ: "U", fs: fat},
		{sizeMiB: 16, typ: "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"},
		{sizeMiB: 64, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs, uuid: ntfsGUID},
	})
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%v", err)
	}
	return string(b)
}

func xattr(t *testing.T, p, name string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := syscall.Getxattr(p, name, buf)
	if err != nil {
		t.Errorf("getxattr %s %s: %v", name, p, err)
		return ""
	}
	return string(buf[:n])
}

// TestRegistryView reads hives made by hivex through the mounted view:
// keys, values of each type, escapes, the default value, types as xattrs,
// CurrentControlSet, users' hives through ProfileList.
func TestRegistryView(t *testing.T) {
	lib := t.TempDir()
	makeWindowsImage(t, filepath.Join(lib, "web01.img"))
	mnt := mountLib(t, lib, "--ro")
	reg := filepath.Join(mnt, "web01.img", "registry")
	svc := filepath.Join(reg, "HKLM", "SYSTEM", "CurrentControlSet", "Services")
	checks := []struct{ path, want, typ string }{
		{"HKLM/SYSTEM/ControlSet001/Control/ComputerName/ComputerName/ComputerName", "WEB01\n", "REG_SZ"},
		{"HKLM/SYSTEM/ControlSet001/Services/Spooler/Start", "2\n", "REG_DWORD"},
		{"HKLM/SYSTEM/ControlSet001/Services/Spooler/ImagePath", "%SystemRoot%\n", "REG_EXPAND_SZ"},
		{"HKLM/SYSTEM/ControlSet001/Services/Spooler/DependOnService", "RPCSS\nhttp\n", "REG_MULTI_SZ"},
		{"HKLM/SYSTEM/ControlSet001/Services/Spooler/Blob", "\x01\x02\x03\xff", "REG_BINARY"},
		{"HKLM/SYSTEM/ControlSet001/Services/Odd%2FName/@", "default value\n", "REG_SZ"},
		{"HKLM/SYSTEM/ControlSet001/Services/Odd%2FName/50%25", "50\n", "REG_DWORD"},
		{"hklm/software/microsoft/windows nt/currentversion/PRODUCTNAME", "Windows Server 2019 Standard\n", "REG_SZ"},
		{"HKU/S-1-5-21-1-2-3-1001/Software/Contoso/Theme", "dark\n", "REG_SZ"},
		{"HKU/alice/Software/Contoso/Theme", "dark\n", "REG_SZ"},
	}
	for _, c := range checks {
		p := filepath.Join(reg, c.path)
		if got := readText(t, p); got != c.want {
			t.Errorf("%s = %q, want %q", c.path, got, c.want)
		}
		if got := xattr(t, p, "user.reg.type"); got != c.typ {
			t.Errorf("%s type %q, want %q", c.path, got, c.typ)
		}
	}
	if target, err := os.Readlink(filepath.Join(reg, "HKLM", "SYSTEM", "CurrentControlSet")); err != nil || target != "ControlSet001" {
		t.Errorf("CurrentControlSet -> %q (%v)", target, err)
	}
	if got := strings.Join(listNames(t, filepath.Join(svc, "Spooler")), ","); got != "Blob,DependOnService,ImagePath,Start" {
		t.Errorf("Spooler lists %q", got)
	}
	if got := strings.Join(listNames(t, filepath.Join(reg, "HKLM")), ","); got != "SOFTWARE,SYSTEM" {
		t.Errorf("HKLM lists %q", got)
	}
	// writes under --ro are refused
	if err := os.WriteFile(filepath.Join(svc, "Spooler", "Start"), []byte("4"), 0o644); err == nil {
		t.Errorf("writing a value under --ro succeeded")
	}
}
