package mount

import (
	"os"
	"path/filepath"
	"syscall"
)

// fileSize is the host file's length, or with allocated its blocks in use.
func fileSize(p string, allocated bool) *int64 {
	st, err := os.Stat(p)
	if err != nil {
		return nil
	}
	n := st.Size()
	if s, ok := st.Sys().(*syscall.Stat_t); ok && allocated {
		n = s.Blocks * 512
	}
	return &n
}

// Info is what `offvm inspect --json` and info.json say of an image
// (CONTRACT.md, "Inspection"). Fields that cannot be known are null.
type Info struct {
	Image          string            `json:"image"`
	Path           string            `json:"path"`
	Format         *string           `json:"format"`
	Variant        *string           `json:"variant"`
	VirtualSize    *int64            `json:"virtual_size"`
	FileSize       *int64            `json:"file_size"`      // the image file's length
	Allocated      *int64            `json:"allocated_size"` // what it takes on the host's disk
	Parent         *string           `json:"parent"`
	Writable       bool              `json:"writable"`
	ReadOnlyReason *string           `json:"read_only_reason"`
	PartitionTable *string           `json:"partition_table"`
	Partitions     []PartitionInfo   `json:"partitions"`
	Drives         map[string]string `json:"drives"`
	OS             any               `json:"os"`
	Updates        []any             `json:"updates"`
	Applications   []any             `json:"applications"`
	Users          []any             `json:"users"`
	Patches        []any             `json:"patches"`
	Staged         []any             `json:"staged"` // update packages offvm staged (inspect: HKLM\SOFTWARE\offvm\Staged)
	VM             any               `json:"vm"`     // the VM whose configuration names this disk (library.VMInfo), nil if none
	Problems       []string          `json:"problems"`
	// Hidden lists the files --no-secrets refuses (EACCES), as paths in
	// the image's directory; absent without --no-secrets.
	Hidden []string `json:"hidden,omitempty"`
	Error  *string  `json:"error,omitempty"`
}

// PartitionInfo describes one partition.
type PartitionInfo struct {
	Number     int     `json:"number"`
	Type       string  `json:"type"`
	Filesystem *string `json:"filesystem"`
	Start      int64   `json:"start"`
	Size       int64   `json:"size"`
	Label      *string `json:"label"`
	Writable   bool    `json:"writable"`
	ReadOnly   *string `json:"read_only_reason"`
	Error      *string `json:"error,omitempty"`
	// LV is "vg/lv" for an LVM logical volume (numbered from 100).
	LV string `json:"lv,omitempty"`
	// Locked and Encryption describe a BitLocker or LUKS partition.
	Locked     bool       `json:"locked,omitempty"`
	Encryption *LayerInfo `json:"encryption,omitempty"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ErrorInfo is the info.json of an image that could not be opened.
func ErrorInfo(path string, err error) Info {
	msg := err.Error()
	return Info{Image: filepath.Base(path), Path: path, Error: &msg, Problems: []string{msg},
		Partitions: []PartitionInfo{}, Drives: map[string]string{}, Updates: []any{}, Applications: []any{}, Users: []any{}, Patches: []any{}, Staged: []any{}}
}

// Info describes the image: container, partitions and file systems.
// Later layers (inspect) fill the guest's OS, updates and applications.
func (im *Image) Info() Info {
	di := im.base.Info()
	size := im.disk.Size()
	inf := Info{
		Image: filepath.Base(im.Path), Path: im.Path, FileSize: fileSize(im.Path, false), Allocated: fileSize(im.Path, true),
		Format: strp(di.Format), Variant: strp(di.Variant), VirtualSize: &size,
		Parent: strp(di.Parent), Writable: im.readOnly == "", ReadOnlyReason: strp(im.readOnly), VM: im.opts.VM,
		PartitionTable: strp(im.table.Kind),
		Partitions:     []PartitionInfo{}, Drives: map[string]string{},
		Updates: []any{}, Applications: []any{}, Users: []any{}, Patches: []any{}, Staged: []any{}, Problems: []string{},
	}
	inf.Problems = append(inf.Problems, di.Problems...)
	for _, v := range im.Volumes() {
		p := PartitionInfo{Number: v.Partition.Number, Type: v.Partition.Type, Filesystem: strp(v.FSType),
			Start: v.Partition.Start, Size: v.Partition.Size, LV: im.LVName(v.Partition.Number), Encryption: v.Layer}
		if v.Layer != nil {
			p.Locked = v.Layer.Locked
		}
		if v.FS != nil {
			p.Label = strp(v.FS.Label())
			p.Writable = v.ReadOnly == ""
			p.ReadOnly = strp(v.ReadOnly)
		}
		if v.Err != nil {
			p.Error = strp(v.Err.Error())
			inf.Problems = append(inf.Problems, v.Err.Error())
		}
		inf.Partitions = append(inf.Partitions, p)
	}
	if im.opts.NoSecrets {
		inf.Hidden = append([]string{"disk"}, im.Hidden()...)
	}
	return inf
}
