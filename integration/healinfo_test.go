package integration

import "testing"

// A heal info document as glfsheal 10.3 writes it with --xml, one brick
// down.
const healInfoXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <healInfo>
    <bricks>
      <brick hostUuid="074f9fe4-2719-4522-a6ee-aaed5661f35a">
        <name>127.145.157.1:/tmp/b0</name>
        <file gfid="a0c4ee7e-8b8e-4b0b-9f73-7c8d3b1b3e0a">/f1</file>
        <file gfid="00000000-0000-0000-0000-000000000001">/</file>
        <status>Connected</status>
        <numberOfEntries>2</numberOfEntries>
      </brick>
      <brick hostUuid="-">
        <name>127.145.157.3:/tmp/b2</name>
        <status>Transport endpoint is not connected</status>
        <numberOfEntries>-</numberOfEntries>
      </brick>
    </bricks>
  </healInfo>
  <opRet>0</opRet>
  <opErrno>0</opErrno>
  <opErrstr/>
</cliOutput>`

func TestParseHealInfo(t *testing.T) {
	got, err := parseHealInfo("a warning on stderr\n" + healInfoXML)
	if err != nil {
		t.Fatal(err)
	}
	want := []HealEntries{
		{"127.145.157.1:/tmp/b0", "Connected", 2},
		{"127.145.157.3:/tmp/b2", "Transport endpoint is not connected", -1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("brick %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := parseHealInfo("Volume rep3 does not exist"); err == nil {
		t.Error("no error for output that is not XML")
	}
	if _, err := parseHealInfo(`<cliOutput><opRet>-1</opRet><opErrstr>Volume not started</opErrstr></cliOutput>`); err == nil {
		t.Error("no error for opRet -1")
	}
}
