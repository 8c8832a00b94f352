// Package inspect tells what an image is from the guest's own data: the
// OS, its version and build, hostname, installed updates and applications,
// users, and the patches offvm applied. It reads a few files and keys
// through the volume engines, read-only, and never guesses: what cannot be
// read is null, and why is listed in problems.
package inspect

import (
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// OS is the "os" object of info.json.
type OS struct {
	Family       string   `json:"family"`
	ProductName  *string  `json:"product_name"`
	Edition      *string  `json:"edition"`
	Distribution *string  `json:"distribution,omitempty"`
	Version      *string  `json:"version"`
	Build        *int     `json:"build"`
	UBR          *int     `json:"ubr"`
	Arch         *string  `json:"arch"`
	Hostname     *string  `json:"hostname"`
	Domain       *string  `json:"domain"`
	InstallDate  *string  `json:"install_date"`
	LastUpdate   *string  `json:"last_update"`
	Kernels      []string `json:"kernels,omitempty"`
	// SystemPartition is the partition holding the OS ("p3").
	SystemPartition string `json:"system_partition"`
	// Mounts maps a Linux guest's mount points to volumes as its
	// /etc/fstab names them ({"/": "p101", "/boot": "p1"}).
	Mounts map[string]string `json:"mounts,omitempty"`
}

// Application is one installed program or package.
type Application struct {
	Name      string  `json:"name"`
	Version   *string `json:"version"`
	Publisher *string `json:"publisher"`
}

// Update is one installed Windows update.
type Update struct {
	ID        string  `json:"id"`
	Package   string  `json:"package"`
	Installed *string `json:"installed"`
}

// User is one user profile.
type User struct {
	SID     string  `json:"sid"`
	Name    *string `json:"name"`
	Profile *string `json:"profile"`
}

// Patch is one bundle offvm applied.
type Patch struct {
	ID      string  `json:"id"`
	Applied *string `json:"applied"`
}

// StagedUpdate is one update package offvm staged for the next boot, with
// what offvm-firstboot recorded once the VM ran (null before).
type StagedUpdate struct {
	ID       string  `json:"id"`
	State    string  `json:"state"`
	Result   *string `json:"result"`
	ExitCode *string `json:"exit_code"`
	StagedAt *string `json:"staged_at"`
	Finished *string `json:"finished"`
}

// Describe returns the image's info with the guest's facts filled in.
func Describe(im *mount.Image) mount.Info {
	inf := im.Info()
	if describeWindows(&inf, im) {
		return inf
	}
	if root, mounts := linuxRoot(im, im.Volumes()); root != nil && describeLinux(&inf, root) {
		if o, ok := inf.OS.(*OS); ok && len(mounts) > 0 {
			o.Mounts = mounts
		}
	}
	return inf
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func partName(v *mount.Volume) string {
	return "p" + itoa(v.Partition.Number)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// exists tells whether path is present on the volume.
func exists(f volume.FS, path string) bool {
	_, err := volume.Resolve(f, path)
	return err == nil
}
