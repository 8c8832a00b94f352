package tests

import (
	"fmt"
	"time"
)

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }

func strconvItoa(n int64) string { return fmt.Sprint(n) }
