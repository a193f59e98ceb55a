package volfile

import (
	"reflect"
	"testing"
)

func TestParseSpec(t *testing.T) {
	d := DefaultPort
	tests := []struct {
		spec, backup string
		want         Spec
	}{
		{"h1:/vol", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol"}},
		{"h1:vol", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol"}},
		{"h1,h2,h3:/vol", "", Spec{Servers: []Server{{"h1", d}, {"h2", d}, {"h3", d}}, Volume: "vol"}},
		{"10.0.0.1:/cinder", "", Spec{Servers: []Server{{"10.0.0.1", d}}, Volume: "cinder"}},
		{"[::1]:/vol", "", Spec{Servers: []Server{{"::1", d}}, Volume: "vol"}},
		{"[::1]:24008:/vol", "", Spec{Servers: []Server{{"::1", 24008}}, Volume: "vol"}},
		{"::1:/vol", "", Spec{Servers: []Server{{"::1", d}}, Volume: "vol"}},
		{"fe80::1%eth0:/vol", "", Spec{Servers: []Server{{"fe80::1%eth0", d}}, Volume: "vol"}},
		{"h1:24008,h2:/vol", "", Spec{Servers: []Server{{"h1", 24008}, {"h2", d}}, Volume: "vol"}},
		{"h1:/vol/sub/dir", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol", Subdir: "/sub/dir"}},
		{"h1:vol/sub/", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol", Subdir: "/sub"}},
		{"h1:/vol/", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol"}},
		{"h1:/vol//a/../b", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol", Subdir: "/b"}},
		{"h1:/my_vol-2", "h2:h3", Spec{Servers: []Server{{"h1", d}, {"h2", d}, {"h3", d}}, Volume: "my_vol-2"}},
		{"h1:/vol", "h1:[fe80::1%eth0]:h2", Spec{Servers: []Server{{"h1", d}, {"fe80::1%eth0", d}, {"h2", d}}, Volume: "vol"}},
		{"h1,h1:/vol", "", Spec{Servers: []Server{{"h1", d}}, Volume: "vol"}},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.spec, tt.backup)
		if err != nil {
			t.Errorf("ParseSpec(%q, %q): %v", tt.spec, tt.backup, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSpec(%q, %q) = %+v, want %+v", tt.spec, tt.backup, got, tt.want)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		spec, backup, want string
	}{
		{"", "", "empty spec; use HOST[,HOST...]:/VOLUME[/SUBDIR]"},
		{"foo", "", `spec "foo" has no ':'; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{"[::1]", "", `spec "[::1]" has no ':'; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{":/vol", "", `spec ":/vol" names no server before ':'; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{"h1:", "", `spec "h1:" names no volume after ':'; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{"h1:/", "", `spec "h1:/" names no volume after ':'; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{"h1 :/vol", "", `spec "h1 :/vol" contains white space; use HOST[,HOST...]:/VOLUME[/SUBDIR]`},
		{"h1,,h2:/vol", "", `spec "h1,,h2:/vol": empty host name`},
		{"h1:/v.l", "", `spec "h1:/v.l": volume name "v.l" contains '.'; volume names hold only letters, digits, '-' and '_'`},
		{"h1:/-v", "", `spec "h1:/-v": volume name "-v" cannot start with '-'`},
		{"h1:/snaps/s1/vol", "", `spec "h1:/snaps/s1/vol" is a snapshot mount (/snaps/...), which brickfs does not support`},
		{"h1:99999:/vol", "", `spec "h1:99999:/vol": host "h1:99999": port "99999" is not a number from 1 to 65535`},
		{"h_1!:/vol", "", `spec "h_1!:/vol": host name "h_1!" contains '!'; use letters, digits, '-', '.' and '_'`},
		{"[h1]:/vol", "", `spec "[h1]:/vol": host "[h1]": brackets must hold an IPv6 address`},
		{"[::1]x:/vol", "", `spec "[::1]x:/vol": host "[::1]x": unexpected "x" after ']'`},
		{"1:2:3:/vol", "", `spec "1:2:3:/vol": host "1:2:3" is neither a host name nor an IPv6 address; write an IPv6 address with a port as [ADDR]:PORT`},
		{"[fe80::1%a+b]:/vol", "", `spec "[fe80::1%a+b]:/vol": host "[fe80::1%a+b]": IPv6 zone "a+b" contains '+'; use an interface name or number`},
		{"h1:/vol", "[fe80::1%a b]", `backup-volfile-servers "[fe80::1%a b]": host "[fe80::1%a b]": IPv6 zone "a b" contains ' '; use an interface name or number`},
		{"h1:/vol", "h2:", `backup-volfile-servers "h2:" ends in ':'; separate hosts with ':', e.g. h2:h3`},
		{"h1:/vol", "[::1", `backup-volfile-servers "[::1": '[' without ']'`},
		{"h1:/vol", "[::1]h3", `backup-volfile-servers "[::1]h3": expected ':' after "[::1]"`},
		{"h1:/vol", "h2::h3", `backup-volfile-servers "h2::h3": empty host name`},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.spec, tt.backup)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseSpec(%q, %q) = %v\nwant %s", tt.spec, tt.backup, err, tt.want)
		}
	}
}

func TestServerString(t *testing.T) {
	for s, want := range map[Server]string{
		{"h1", 24007}:    "h1:24007",
		{"::1", 24008}:   "[::1]:24008",
		{"fe80::1%e", 1}: "[fe80::1%e]:1",
		{"10.0.0.1", 7}:  "10.0.0.1:7",
	} {
		if got := s.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", s, got, want)
		}
	}
}
