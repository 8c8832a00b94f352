// Command newhive writes an empty registry hive file, for the demo and
// benchmarks to fill with hivexregedit --merge (hivex cannot create one).
package main

import (
	"fmt"
	"os"

	"github.com/offvm/offvm/registry/hive"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: newhive FILE")
		os.Exit(2)
	}
	data, err := hive.New("ROOT").Serialize()
	if err == nil {
		err = os.WriteFile(os.Args[1], data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "newhive:", err)
		os.Exit(1)
	}
}
