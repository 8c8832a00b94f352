package main

import (
	"path/filepath"
	"strings"
)

// mount(8) runs /sbin/mount.fuse.offvm LIBRARY MOUNTPOINT [-sfnv] [-o OPTS]
// for `mount -t fuse.offvm` and for fstab lines of type fuse.offvm. That
// helper is a link to this binary (make install puts it there); called
// by that name, offvm turns mount(8)'s arguments into `offvm mount`.

// helperNames are the names under which offvm acts as mount(8)'s helper.
var helperNames = map[string]bool{"mount.fuse.offvm": true, "mount.offvm": true}

// isMountHelper reports whether argv0 names the mount helper.
func isMountHelper(argv0 string) bool { return helperNames[filepath.Base(argv0)] }

// mountOptionFlags map fstab options to offvm mount flags; a value after
// '=' is passed as the flag's value.
var mountOptionFlags = map[string]string{
	"ro": "--ro", "allow_other": "--allow-other", "no_secrets": "--no-secrets",
	"pid_file": "--pid-file", "keys": "--keys",
}

// ignoredMountOptions are mount(8)'s and systemd's generic options, which
// say nothing to offvm (rw is the default; FUSE mounts are nodev and
// nosuid whatever is asked).
var ignoredMountOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "_netdev": true, "nofail": true, "dev": true, "nodev": true,
	"suid": true, "nosuid": true, "exec": true, "noexec": true, "async": true, "sync": true,
	"atime": true, "noatime": true, "relatime": true, "strictatime": true, "lazytime": true,
}

// helperArgs turns mount(8)'s helper arguments into offvm's.
func helperArgs(args []string) ([]string, error) {
	var pos, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" && i+1 < len(args):
			i++
			f, err := optionFlags(args[i])
			if err != nil {
				return nil, err
			}
			flags = append(flags, f...)
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			f, err := optionFlags(a[2:])
			if err != nil {
				return nil, err
			}
			flags = append(flags, f...)
		case a == "-t" && i+1 < len(args):
			i++ // the type, fuse.offvm
		case a == "-v":
			flags = append([]string{"-v"}, flags...)
		case len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "sfnvwr") == "":
			// -s sloppy, -f fake, -n no mtab: nothing to do
		case strings.HasPrefix(a, "-"):
			return nil, usagef("mount.fuse.offvm: unknown argument %q", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, usagef("usage: mount -t fuse.offvm LIBRARY MOUNTPOINT [-o ro,allow_other,no_secrets,pid_file=FILE]")
	}
	verbose := len(flags) > 0 && flags[0] == "-v"
	if verbose {
		flags = flags[1:]
	}
	out := []string{"offvm"}
	if verbose {
		out = append(out, "-v")
	}
	out = append(out, "mount")
	out = append(out, flags...)
	return append(out, pos...), nil
}

// optionFlags maps one -o list.
func optionFlags(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		name, val, hasVal := strings.Cut(o, "=")
		switch {
		case o == "" || ignoredMountOptions[name] || strings.HasPrefix(name, "x-") || name == "comment":
		case mountOptionFlags[name] != "":
			out = append(out, mountOptionFlags[name])
			if hasVal {
				out = append(out, val)
			} else if name == "pid_file" || name == "keys" {
				return nil, usagef("mount option %s needs a value (%s=FILE)", name, name)
			}
		default:
			return nil, usagef("mount option %q is not one offvm knows (ro, allow_other, no_secrets, pid_file=FILE, keys=FILE)", o)
		}
	}
	return out, nil
}
