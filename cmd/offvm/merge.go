package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
)

// readInventories reads the ls --json / inspect --json outputs of several
// shards (each a JSON array or a stream of objects, concatenated in any
// way) into one inventory in path order. An image listed twice (a shard
// run again) is taken from the later file.
func readInventories(files []string) ([]mount.Info, error) {
	byPath := map[string]mount.Info{}
	for _, f := range files {
		if err := readInventory(f, byPath); err != nil {
			return nil, err
		}
	}
	out := make([]mount.Info, 0, len(byPath))
	for _, inf := range byPath {
		out = append(out, inf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func readInventory(file string, into map[string]mount.Info) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: JSON value %d: %w", file, n, err)
		}
		var list []json.RawMessage
		if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
			if err := json.Unmarshal(raw, &list); err != nil {
				return fmt.Errorf("%s: JSON value %d: %w", file, n, err)
			}
		} else {
			list = []json.RawMessage{raw}
		}
		for _, item := range list {
			inf, err := inspect.DecodeInfo(item)
			if err != nil {
				return fmt.Errorf("%s: JSON value %d: %w", file, n, err)
			}
			into[inf.Path] = inf
		}
	}
}

// commonDir is the deepest folder holding every image: the library a
// merged report is of.
func commonDir(infos []mount.Info) string {
	if len(infos) == 0 {
		return "(no images)"
	}
	dir := filepath.Dir(infos[0].Path)
	for _, inf := range infos[1:] {
		for dir != "/" && dir != "." && !strings.HasPrefix(inf.Path, dir+string(filepath.Separator)) {
			dir = filepath.Dir(dir)
		}
	}
	return dir
}
