package brick

import (
	"fmt"
	"strconv"
	"time"

	"github.com/brickfs/brickfs/brick/volfile"
)

// ConfigFrom builds a brick's Config from its protocol/client translator
// in the volfile: where the brick is, its credentials, its TLS settings
// and its options; base carries what the mount decides (volfile key,
// subdirectory, health-check timing), and a ping-timeout in base wins
// over the volfile's.
func ConfigFrom(cl *volfile.Volume, base Config) (Config, error) {
	cfg := base
	cfg.Name = cl.Name
	for _, o := range cl.Options {
		switch o.Key {
		case "remote-host":
			cfg.RemoteHost = o.Value
		case "remote-port":
			p, err := strconv.Atoi(o.Value)
			if err != nil || p <= 0 || p > 65535 {
				return cfg, fmt.Errorf("volfile: %s has remote-port %q, not a port number", cl.Name, o.Value)
			}
			cfg.RemotePort = p
		case "remote-subvolume":
			cfg.RemoteSubvolume = o.Value
		case "username":
			cfg.Username = o.Value
		case "password":
			cfg.Password = o.Value
		case "filter-O_DIRECT":
			cfg.FilterODirect = glusterBool(o.Value)
		case "ping-timeout":
			if cfg.PingTimeout == 0 {
				if s, err := strconv.Atoi(o.Value); err == nil && s > 0 {
					cfg.PingTimeout = time.Duration(s) * time.Second
				}
			}
		}
		switch o.Key {
		case "username", "password", "remote-subvolume":
		default:
			cfg.Options = append(cfg.Options, [2]string{o.Key, o.Value})
		}
	}
	if cfg.RemoteHost == "" || cfg.RemoteSubvolume == "" {
		return cfg, fmt.Errorf("volfile: %s lacks remote-host or remote-subvolume", cl.Name)
	}
	tc, err := brickTLS(cl, cfg.TLSDir)
	if err != nil {
		return cfg, err
	}
	cfg.TLS = tc
	return cfg, nil
}
