// Command brickfs mounts GlusterFS volumes with brickfs's own client.
package main

import (
	"os"

	"github.com/brickfs/brickfs/cmd/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stderr)) }
