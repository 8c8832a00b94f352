//go:build !unix

package vmdk

import "time"

func cpuTime() time.Duration { return 0 }
