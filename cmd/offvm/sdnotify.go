package main

import (
	"net"
	"os"
)

// sdNotify tells systemd (a unit of Type=notify) that the tree is visible:
// the sd_notify protocol is one datagram on $NOTIFY_SOCKET. Without that
// variable (not started by systemd) it does nothing.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' { // abstract socket
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}
