package inspect

import (
	"encoding/json"
	"fmt"

	"github.com/offvm/offvm/mount"
)

// jsonInfo is mount.Info as inspect --json prints it, with the fields that
// readers type-assert (report, ls, patcher) typed again; the other lists
// are kept as their JSON so they print exactly as they were.
type jsonInfo struct {
	mount.Info
	OS           *OS               `json:"os"`
	Updates      []Update          `json:"updates"`
	Applications []json.RawMessage `json:"applications"`
	Users        []json.RawMessage `json:"users"`
	Patches      []json.RawMessage `json:"patches"`
	Staged       []StagedUpdate    `json:"staged"`
}

// DecodeInfo reads back one image's description as inspect --json (or
// ls --json) printed it. Anything else (a patch result, a report) is
// refused by name.
func DecodeInfo(b []byte) (mount.Info, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return mount.Info{}, err
	}
	_, hasPath := probe["path"]
	_, hasParts := probe["partitions"]
	if !hasPath || !hasParts {
		return mount.Info{}, fmt.Errorf("not an image description (as ls --json or inspect --json print)")
	}
	return decodeKnownInfo(b)
}

// decodeKnownInfo is DecodeInfo of what is known to be an image's
// description (the inventory cache's own entries): one pass, no probe.
func decodeKnownInfo(b []byte) (mount.Info, error) {
	var j jsonInfo
	if err := json.Unmarshal(b, &j); err != nil {
		return mount.Info{}, err
	}
	inf := j.Info
	inf.OS = nil
	if j.OS != nil {
		inf.OS = j.OS
	}
	inf.Updates = make([]any, len(j.Updates))
	for i, u := range j.Updates {
		inf.Updates[i] = u
	}
	inf.Applications, inf.Users, inf.Patches = raws(j.Applications), raws(j.Users), raws(j.Patches)
	inf.Staged = make([]any, len(j.Staged))
	for i, s := range j.Staged {
		inf.Staged[i] = s
	}
	return inf, nil
}

func raws(l []json.RawMessage) []any {
	out := make([]any, len(l))
	for i, r := range l {
		out[i] = r
	}
	return out
}
