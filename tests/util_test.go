package tests

import (
	"fmt"
	"os/exec"
	"time"
)

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

func strconvItoa(n int64) string { return fmt.Sprint(n) }

func testutilHas(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}
