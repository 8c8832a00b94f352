package detect

import (
	"github.com/offvm/offvm/vdisk/qcow2"
	"github.com/offvm/offvm/vdisk/vhd"
	"github.com/offvm/offvm/vdisk/vhdx"
	"github.com/offvm/offvm/vdisk/vmdk"
)

// The order matters only for files that could match twice: VHDX and qcow2
// have unambiguous magic at offset 0; VMDK's text descriptor and VHD's
// footer come after them. A fixed VHD is a raw disk with a footer, so VHD
// is tried before the raw fallback.
func init() {
	formats = []format{
		{"vhdx", vhdx.Match, vhdx.Open},
		{"qcow2", qcow2.Match, qcow2.Open},
		{"vmdk", vmdk.Match, vmdk.Open},
		{"vhd", vhd.Match, vhd.Open},
	}
}
