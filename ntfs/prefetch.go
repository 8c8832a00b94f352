package ntfs

import (
	"bytes"
	"slices"

	"github.com/offvm/offvm/volume"
)

// maxPrefetchSpan bounds one prefetch read, in records: 64 KiB of 1 KiB
// records, the entries of about one READDIRPLUS reply.
const maxPrefetchSpan = 64

// Prefetch reads the MFT records of the files inos that are not cached,
// one device read per span of up to maxPrefetchSpan records holding them,
// and caches their inodes. The FUSE tree calls it for the entries of a
// listing that readdirplus is about to look up one by one: a file's
// records were otherwise read 1 KiB at a time (20,000 reads for a
// 20,000-file scan tree, whose records lie together as they were
// created). Only listings ask, so a cold `offvm ls`, which reads a few
// records per image, reads no more than it needs (the $MFT chunk reads
// of 0af2980 did, for every record read). Held under the read lock like
// any lookup: writers, who hold it alone, forget what they change.
func (v *Volume) Prefetch(inos []volume.Ino) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	nums := v.uncached(inos)
	for len(nums) > 0 {
		k := 1
		for k < len(nums) && nums[k]-nums[0] < maxPrefetchSpan {
			k++
		}
		v.prefetchSpan(nums[:k])
		nums = nums[k:]
	}
}

// uncached returns the user files among inos whose inode is not cached,
// sorted, without repeats.
func (v *Volume) uncached(inos []volume.Ino) []uint64 {
	nums := make([]uint64, 0, len(inos))
	for _, ino := range inos {
		if n := uint64(ino); n >= firstUser && v.cache.getInode(n) == nil {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return slices.Compact(nums)
}

// prefetchSpan reads the records from nums[0] to the last of nums in one
// read and caches the inodes of those asked for. A span of one is left to
// the lookup, as are records that cannot be read or parsed: the lookup
// reads them again and names the error.
func (v *Volume) prefetchSpan(nums []uint64) {
	size := int64(v.geo.recordSize)
	first, last := nums[0], nums[len(nums)-1]
	if len(nums) < 2 || last >= uint64(v.mftSize/size) {
		return
	}
	buf := make([]byte, int64(last-first+1)*size)
	if err := v.readRuns(v.mftRuns, buf, int64(first)*size); err != nil {
		return
	}
	for _, n := range nums {
		off := int64(n-first) * size
		r, err := decodeRecord(bytes.Clone(buf[off:off+size]), n) // a record of its own: the cache keeps it
		if err != nil {
			continue
		}
		_, _ = v.inodeOf(r)
	}
}

// readAhead reads, with the record of entry i of index node n when it is
// not cached, the records of the names after it in n that lie within
// maxPrefetchSpan records past it: one device read of up to 64 KiB where
// a tree walker's lookups (one per name, in order: rsync, cp -a, find)
// read 1 KiB each. Only when the walk looks ordered: i is the first
// name of its node, or the name before it was read already. A lookup of
// one path (a stat of System32/config/SOFTWARE) thus reads what it did,
// bar one node in 40-odd. Only leaves: an inner node's neighbours lie
// far apart. Held under the read lock, like Prefetch.
func (v *Volume) readAhead(n *indexNode, i int) {
	keys := n.entries[:len(n.entries)-1]
	first := keys[i].ref & refNumMask
	if !n.leaf || first < firstUser || v.cache.getInode(first) != nil {
		return
	}
	if i > 0 && v.cache.getInode(keys[i-1].ref&refNumMask) == nil {
		return
	}
	nums := []uint64{first}
	for _, e := range keys[i+1:] {
		num := e.ref & refNumMask
		if num > first && num-first < maxPrefetchSpan && v.cache.getInode(num) == nil {
			nums = append(nums, num)
		}
	}
	slices.Sort(nums)
	v.prefetchSpan(slices.Compact(nums))
}
