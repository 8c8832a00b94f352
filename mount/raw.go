package mount

import "io"

// Raw is a partition's bytes as the raw/pN view shows them, read-only.
type Raw interface {
	io.ReaderAt
	Size() int64
}

// Raw returns partition n's bytes: decrypted when an encryption layer was
// unlocked, as they are on disk otherwise (a locked or plain partition).
func (im *Image) Raw(n int) (Raw, error) {
	v, err := im.Volume(n)
	if err != nil {
		return nil, err
	}
	if v.Dev != nil {
		return v.Dev, nil
	}
	return &window{disk: im.disk, start: v.Partition.Start, size: v.Partition.Size}, nil
}
