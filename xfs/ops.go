package xfs

import "github.com/offvm/offvm/volume"

var _ volume.Writer = (*FS)(nil)
