package tests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// jsonLines decodes JSON Lines (one object a line, as patch apply --json
// prints) into the slice *into points at; a line that is not one JSON
// object is an error.
func jsonLines(s string, into any) error {
	v := reflect.ValueOf(into).Elem()
	for i, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "{") {
			return fmt.Errorf("line %d is not a JSON object: %q", i+1, line)
		}
		p := reflect.New(v.Type().Elem())
		if err := json.Unmarshal([]byte(line), p.Interface()); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		v.Set(reflect.Append(v, p.Elem()))
	}
	return nil
}
