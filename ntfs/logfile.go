package ntfs

import "fmt"

// emptyLogFile fills $LogFile with 0xff, as ntfs-3g does before writing:
// Windows then finds no restart area to replay and starts a fresh log
// instead of replaying records that no longer match the volume.
func (v *Volume) emptyLogFile() error {
	in, err := v.loadInode(recLogFile)
	if err != nil {
		return fmt.Errorf("ntfs: $LogFile: %w", err)
	}
	s := in.find(atData, "")
	if s == nil || s.resident {
		return fmt.Errorf("ntfs: $LogFile has no non-resident data")
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 0xff
	}
	for off := int64(0); off < s.dataSize; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), s.dataSize-off)
		if err := v.writeRuns(s.runs, chunk[:n], off); err != nil {
			return fmt.Errorf("ntfs: emptying $LogFile: %w", err)
		}
	}
	return nil
}
