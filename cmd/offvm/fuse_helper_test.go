package main

import (
	"errors"
	"strings"
	"testing"
)

func TestHelperArgs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" when it must be refused as a usage mistake
	}{
		{"/srv/lib /mnt/lib -o rw", "offvm mount /srv/lib /mnt/lib"},
		{"/srv/lib /mnt/lib -o ro,allow_other,noauto,_netdev,x-systemd.automount", "offvm mount --ro --allow-other /srv/lib /mnt/lib"},
		{"/srv/lib /mnt/lib -n -o rw,pid_file=/run/p.pid -t fuse.offvm", "offvm mount --pid-file /run/p.pid /srv/lib /mnt/lib"},
		{"-v /srv/lib /mnt/lib -ono_secrets", "offvm -v mount --no-secrets /srv/lib /mnt/lib"},
		{"/srv/lib /mnt/lib -o ro,bogus", ""},
		{"/srv/lib /mnt/lib -o pid_file", ""},
		{"/srv/lib", ""},
		{"/srv/lib /mnt/lib -x", ""},
	} {
		got, err := helperArgs(strings.Fields(c.in))
		if c.want == "" {
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("%q: %v, %v; want a usage error", c.in, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%q = %q, %v; want %q", c.in, strings.Join(got, " "), err, c.want)
		}
	}
	if !isMountHelper("/sbin/mount.fuse.offvm") || isMountHelper("/usr/bin/offvm") {
		t.Errorf("isMountHelper misjudges")
	}
}
