"""Writes the wevtutil fixtures in this folder (run once; the files are committed).

The events are hand-written in the documented Windows Event schema
(http://schemas.microsoft.com/win/2004/08/events/event), shaped like what
`wevtutil qe System /q:"*[System[Provider[@Name='srv'] and (EventID=2019 or EventID=2020)]]" /f:xml /c:20 /rd:true`
prints for the Server service's "unable to allocate from the system nonpaged/paged pool because the
pool was empty" errors: Qualifiers 49152 (0xC000, error), Level 2, Execution ProcessID 4 (System),
insertion string \\Device\\LanmanServer and the IO_ERROR_LOG_PACKET dump in <Binary> (its ErrorCode
field reads E30700C0 = 0xC00007E3 for 2019, E40700C0 for 2020).
"""

NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def ev(eid, rec, t, computer="FS01.corp.example.com", provider="srv", rendered=False):
    code = {2019: "E30700C0", 2020: "E40700C0"}[eid]
    binary = f"0000040001005400000000{code}000000000000000000000000000000000000000000000000"
    render = ""
    if rendered:
        pool = "nonpaged" if eid == 2019 else "paged"
        render = (f"<RenderingInfo Culture='en-US'><Message>The server was unable to allocate from the system "
                  f"{pool} pool because the pool was empty.</Message><Level>Error</Level><Task></Task>"
                  f"<Opcode>Info</Opcode><Channel></Channel><Provider></Provider><Keywords><Keyword>Classic</Keyword>"
                  f"</Keywords></RenderingInfo>")
    return (f"<Event xmlns='{NS}'><System><Provider Name='{provider}'/>"
            f"<EventID Qualifiers='49152'>{eid}</EventID><Version>0</Version><Level>2</Level><Task>0</Task>"
            f"<Opcode>0</Opcode><Keywords>0x80000000000000</Keywords><TimeCreated SystemTime='{t}'/>"
            f"<EventRecordID>{rec}</EventRecordID><Correlation/><Execution ProcessID='4' ThreadID='0'/>"
            f"<Channel>System</Channel><Computer>{computer}</Computer><Security/></System>"
            f"<EventData><Data>\\Device\\LanmanServer</Data><Binary>{binary}</Binary></EventData>{render}</Event>")


def main():
    # newest first, as /rd:true prints them; concatenated with no separator and no root element
    events = [
        ev(2019, 184467, "2026-01-02T02:51:07.6182913Z"),
        ev(2019, 184466, "2026-01-02T02:50:31.1049921Z"),
        ev(2020, 184460, "2026-01-02T02:48:12.0003377Z"),
        ev(2019, 184411, "2026-01-01T23:10:56.9930012Z"),
    ]
    with open("wevtutil-srv-concatenated.xml", "w", encoding="utf-8", newline="") as f:
        f.write("".join(events))
    # CRLF between events, a UTF-8 BOM, the provider spelled 'Srv', one event rendered (/f:RenderedXml)
    old = [
        ev(2020, 90211, "2025-06-30T08:00:02.5000000Z", computer="SQL02", provider="Srv", rendered=True),
        ev(2020, 90107, "2025-06-29T22:14:40.1234567Z", computer="SQL02", provider="Srv"),
    ]
    with open("wevtutil-srv-old-crlf.xml", "w", encoding="utf-8-sig", newline="") as f:
        f.write("\r\n".join(old) + "\r\n")
    # output cut off in the middle of the third event
    with open("wevtutil-srv-truncated.xml", "w", encoding="utf-8", newline="") as f:
        f.write("".join(events[:2]) + events[2][: len(events[2]) // 2])
    open("wevtutil-empty.xml", "w").close()
    with open("wevtutil-access-denied.txt", "w", newline="") as f:
        f.write("Failed to read events. Access is denied.\r\n")


if __name__ == "__main__":
    main()
