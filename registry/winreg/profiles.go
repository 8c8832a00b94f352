package winreg

import (
	"path"
	"strings"

	"github.com/offvm/offvm/registry/hive"
)

const profileList = `Microsoft\Windows NT\CurrentVersion\ProfileList`

// Users reads ProfileList (in SOFTWARE) once and returns the users' hives
// that exist on this volume: NTUSER.DAT as HKU/<SID>, UsrClass.dat as
// HKU/<SID>_Classes.
func (r *Registry) Users() ([]*Hive, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.usersOK {
		return r.users, r.usersErr
	}
	r.usersOK = true
	r.aliases = map[string]string{}
	soft := r.hiveLocked("HKLM/SOFTWARE")
	if soft == nil {
		return nil, nil
	}
	h, err := soft.Load(r.FS)
	if err != nil {
		r.usersErr = err
		return nil, err
	}
	r.profiles = readProfiles(h)
	for _, p := range r.profiles {
		dir := r.localPath(p.Path)
		if dir == "" {
			continue
		}
		for _, c := range []struct{ file, suffix string }{
			{path.Join(dir, "NTUSER.DAT"), ""},
			{path.Join(dir, "AppData/Local/Microsoft/Windows/UsrClass.dat"), "_Classes"},
		} {
			if exists(r, c.file) {
				r.users = append(r.users, &Hive{Root: "HKU/" + p.SID + c.suffix, File: c.file})
			}
		}
		if p.Name != "" && exists(r, path.Join(dir, "NTUSER.DAT")) {
			r.aliases[p.Name] = p.SID
		}
	}
	sortHives(r.users)
	return r.users, nil
}

// Profiles returns ProfileList's entries (after Users has run).
func (r *Registry) Profiles() []Profile {
	r.Users()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.profiles
}

// Aliases maps user names to SIDs, for the HKU/<name> links.
func (r *Registry) Aliases() map[string]string {
	r.Users()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aliases
}

func (r *Registry) hiveLocked(root string) *Hive {
	for _, h := range r.machine {
		if strings.EqualFold(h.Root, root) {
			return h
		}
	}
	return nil
}

func readProfiles(h *hive.Hive) []Profile {
	k, err := h.Lookup(profileList)
	if err != nil {
		return nil
	}
	subs, err := k.Subkeys()
	if err != nil {
		return nil
	}
	var out []Profile
	for _, s := range subs {
		p := Profile{SID: s.Name()}
		if v, err := s.Value("ProfileImagePath"); err == nil {
			if d, err := v.Data(); err == nil {
				p.Path = decodeString(d)
			}
		}
		p.Name = winBase(p.Path)
		out = append(out, p)
	}
	return out
}

// localPath maps a Windows path on the system drive (C:\Users\alice,
// %SystemDrive%\Users\alice) to a path on the system volume, "" when it
// points elsewhere.
func (r *Registry) localPath(win string) string {
	p := strings.ReplaceAll(win, `\`, "/")
	lower := strings.ToLower(p)
	switch {
	case strings.HasPrefix(lower, "%systemdrive%/"):
		p = p[len("%systemdrive%/"):]
	case strings.HasPrefix(lower, "%systemroot%/"):
		p = "Windows/" + p[len("%systemroot%/"):]
	case len(p) > 3 && p[1] == ':' && p[2] == '/':
		p = p[3:]
	default:
		return ""
	}
	return p
}

func exists(r *Registry, p string) bool {
	a, err := resolve(r, p)
	return err == nil && a
}

func winBase(p string) string {
	p = strings.TrimRight(strings.ReplaceAll(p, `\`, "/"), "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
