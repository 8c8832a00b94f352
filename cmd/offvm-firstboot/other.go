//go:build !windows

package main

import (
	"fmt"
	"os"
)

func run() {
	fmt.Fprintln(os.Stderr, "offvm-firstboot: a Windows service; build it with GOOS=windows")
	os.Exit(2)
}
