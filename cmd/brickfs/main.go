// Command brickfs mounts GlusterFS volumes with brickfs's own client. The
// same binary, installed as mount.glusterfs or mount.brickfs, is the
// mount(8) helper, and as brickfs-fstab-generator a systemd generator
// (brickfs install puts those links in place).
package main

import (
	"os"

	"github.com/brickfs/brickfs/cmd/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args, os.Stderr)) }
