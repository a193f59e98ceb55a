// Command mount.brickfs is the mount(8) helper for `mount -t brickfs` and
// fstab lines of type brickfs (installed as mount.glusterfs, for `mount -t
// glusterfs`: see cli.HelperMain). mount(8) calls it as
//
//	/sbin/mount.brickfs SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
//
// where OPTIONS is every fstab or -o option except auto, noauto, comment,
// x-*, loop, offset, sizelimit and the propagation flags, joined by commas.
// For example:
//
//	mount -t brickfs gl1,gl2:/cinder /var/lib/nova/mnt/abc -o log-level=debug
//	gl1:/cinder  /mnt/cinder  brickfs  backup-volfile-servers=gl2:gl3,_netdev  0 0
package main

import (
	"os"

	"github.com/brickfs/brickfs/cmd/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args, os.Stderr)) }
