package main

import "github.com/urfave/cli/v2"

// libvirtFlag adds a folder of libvirt domain XML kept outside the
// library (/etc/libvirt/qemu): its domains name disks in the library.
func libvirtFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "libvirt", Usage: "also read the libvirt domains in `DIR` (e.g. /etc/libvirt/qemu); repeatable"}
}
