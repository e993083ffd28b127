-- The dissection logic. Everything about the byte layout comes from LAYOUT above, which is
-- generated from the codec's tables; nothing below names an offset or a field of its own.
-- Written for the Lua of Debian's tshark (5.2) and of newer Wireshark releases (5.4): no
-- math.pow, no bit32, no string.unpack; Wireshark itself reads every field's bytes.

local TWO_32 = 4294967296

local telemetry = Proto("vitalsim.telemetry", "Vital-signs telemetry datagram (vitalsim)")
local alarm = Proto("vitalsim.alarm", "Vital-signs alarm channel (vitalsim)")

---------------------------------------------------------------------------------------------
-- Telemetry fields: one per entry of the layout tables, named as in the scapy layers
---------------------------------------------------------------------------------------------

local T = {}          -- field name -> ProtoField
local T_ORDER = {}    -- every ProtoField, for telemetry.fields
local VALUES = {type = LAYOUT.types, channel = LAYOUT.channels, rhythm = LAYOUT.rhythms}

local function telemetry_field(spec)
  local abbr = "vitalsim.telemetry." .. spec.name
  local make = ProtoField[spec.ftype]
  local field
  if spec.ftype == "float" or spec.ftype == "double" then
    field = make(abbr, spec.name)
  elseif spec.name == "magic" or spec.name == "flags" then
    field = make(abbr, spec.name, base.HEX)
  else
    field = make(abbr, spec.name, base.DEC, VALUES[spec.name])
  end
  T[spec.name] = field
  T_ORDER[#T_ORDER + 1] = field
end

for _, part in ipairs({LAYOUT.header, LAYOUT.numerics, LAYOUT.wave}) do
  for _, spec in ipairs(part) do telemetry_field(spec) end
end

local OFFSET = {}     -- header field name -> its spec
for _, spec in ipairs(LAYOUT.header) do OFFSET[spec.name] = spec end

local NUMERIC = {}    -- numerics field name -> its spec
for _, spec in ipairs(LAYOUT.numerics) do NUMERIC[spec.name] = spec end

local FLAG_BITS = {}
for _, flag in ipairs(LAYOUT.flags) do
  local bit = ProtoField.bool("vitalsim.telemetry.flags." .. flag.name, flag.name,
                              OFFSET.flags.size * 8, nil, flag.mask)
  FLAG_BITS[#FLAG_BITS + 1] = bit
  T_ORDER[#T_ORDER + 1] = bit
end

T.samples = ProtoField[LAYOUT.sample.ftype]("vitalsim.telemetry.samples", "samples")
T.tag = ProtoField.bytes("vitalsim.telemetry.tag", "tag")
T.gap = ProtoField.uint32("vitalsim.telemetry.gap", "datagrams missing before this one",
                          base.DEC, nil, nil,
                          "sequence numbers of this device and boot skipped since the highest seen")
for _, name in ipairs({"samples", "tag", "gap"}) do T_ORDER[#T_ORDER + 1] = T[name] end
telemetry.fields = T_ORDER

local TE = {
  gap = ProtoExpert.new("vitalsim.telemetry.seq_gap", "Sequence gap: datagrams lost",
                        expert.group.SEQUENCE, expert.severity.WARN),
  back = ProtoExpert.new("vitalsim.telemetry.seq_back",
                         "Sequence number not above the highest seen: duplicate or reordered",
                         expert.group.SEQUENCE, expert.severity.NOTE),
  version = ProtoExpert.new("vitalsim.telemetry.bad_version", "Unknown telemetry version",
                            expert.group.PROTOCOL, expert.severity.ERROR),
  length = ProtoExpert.new("vitalsim.telemetry.length", "Length outside the bound",
                           expert.group.MALFORMED, expert.severity.ERROR),
  short = ProtoExpert.new("vitalsim.telemetry.short", "Shorter than a telemetry header",
                          expert.group.MALFORMED, expert.severity.ERROR),
  magic = ProtoExpert.new("vitalsim.telemetry.bad_magic", "Not a telemetry datagram (magic)",
                          expert.group.MALFORMED, expert.severity.ERROR),
  body = ProtoExpert.new("vitalsim.telemetry.bad_body", "Unknown message type or channel",
                         expert.group.MALFORMED, expert.severity.ERROR),
}
telemetry.experts = {TE.gap, TE.back, TE.version, TE.length, TE.short, TE.magic, TE.body}

---------------------------------------------------------------------------------------------
-- Alarm frame fields: length u32 | type u8 | JSON body, as scapy's AlarmFrame
---------------------------------------------------------------------------------------------

local A = {
  length = ProtoField.uint32("vitalsim.alarm.length", "length", base.DEC, nil, nil,
                             "bytes of type and body"),
  type = ProtoField.uint8("vitalsim.alarm.type", "type", base.DEC, LAYOUT.frame_types),
  body = ProtoField.string("vitalsim.alarm.body", "body"),
}
alarm.fields = {A.length, A.type, A.body}

local AE = {
  length = ProtoExpert.new("vitalsim.alarm.bad_length",
                           "Frame length outside the bound: the station closes the connection",
                           expert.group.MALFORMED, expert.severity.ERROR),
  type = ProtoExpert.new("vitalsim.alarm.bad_type", "Unknown frame type",
                         expert.group.MALFORMED, expert.severity.ERROR),
  body = ProtoExpert.new("vitalsim.alarm.bad_body", "Frame body is not a JSON object",
                         expert.group.MALFORMED, expert.severity.ERROR),
}
alarm.experts = {AE.length, AE.type, AE.body}

-- Wireshark's JSON dissector shows each body as a tree, where this Wireshark has one
local json_ok, json = pcall(Dissector.get, "json")
if not json_ok then json = nil end

---------------------------------------------------------------------------------------------
-- Telemetry
---------------------------------------------------------------------------------------------

-- per device and boot, the highest sequence number seen; per packet, what that made of it
local highest = {}
local seq_verdict = {}

function telemetry.init()
  highest = {}
  seq_verdict = {}
end

local function range_of(tvb, base_offset, spec)
  return tvb(base_offset + spec.offset, spec.size)
end

local function utc(us)
  local n = us:tonumber()
  local seconds = math.floor(n / 1000000)
  return string.format("%s.%06d UTC", os.date("!%Y-%m-%d %H:%M:%S", seconds),
                       n - seconds * 1000000)
end

-- the verdict on this packet's sequence number, computed once, on the first pass in order
local function sequence(pinfo, device, boot, seq)
  local verdict = seq_verdict[pinfo.number]
  if verdict == nil then
    local key = device .. "/" .. boot
    local last = highest[key]
    verdict = {gap = 0, back = false, last = last}
    if last ~= nil then
      local ahead = (seq - last) % TWO_32
      if ahead == 0 or ahead >= TWO_32 / 2 then
        verdict.back = true
      else
        verdict.gap = ahead - 1
      end
    end
    if not verdict.back then highest[key] = seq end
    seq_verdict[pinfo.number] = verdict
  end
  return verdict
end

local function dissect_body(tvb, pinfo, tree, mtype, body_len, available)
  local at = LAYOUT.header_size
  if mtype == LAYOUT.type_numerics then
    if body_len ~= LAYOUT.numerics_size or available < LAYOUT.numerics_size then
      tree:add_proto_expert_info(TE.length, string.format(
        "numerics body is %d bytes (%d present), expected %d", body_len, available,
        LAYOUT.numerics_size))
      return nil
    end
    local body = tree:add(tvb(at, body_len), "numerics")
    for _, spec in ipairs(LAYOUT.numerics) do body:add(T[spec.name], range_of(tvb, at, spec)) end
    if NUMERIC.hr then
      return string.format("hr %.0f", range_of(tvb, at, NUMERIC.hr):float())
    end
    return ""
  elseif mtype == LAYOUT.type_wave then
    if available < LAYOUT.wave_head_size then
      tree:add_proto_expert_info(TE.length, string.format(
        "wave body is %d bytes, less than its %d-byte head", available, LAYOUT.wave_head_size))
      return nil
    end
    local body = tree:add(tvb(at, math.min(body_len, available)), "wave")
    local field = {}
    for _, spec in ipairs(LAYOUT.wave) do
      body:add(T[spec.name], range_of(tvb, at, spec))
      field[spec.name] = range_of(tvb, at, spec)
    end
    local channel = LAYOUT.channels[field.channel:uint()]
    if channel == nil then
      body:add_proto_expert_info(TE.body, "unknown waveform channel " .. field.channel:uint())
    end
    local count = field.count:uint()
    local need = LAYOUT.wave_head_size + count * LAYOUT.sample.size
    if body_len ~= need or available < need then
      body:add_proto_expert_info(TE.length, string.format(
        "wave body is %d bytes (%d present), %d samples need %d", body_len, available, count,
        need))
      return nil
    end
    local samples = body:add(tvb(at + LAYOUT.wave_head_size, count * LAYOUT.sample.size),
                             string.format("samples (%d)", count))
    for i = 0, count - 1 do
      samples:add(T.samples, tvb(at + LAYOUT.wave_head_size + i * LAYOUT.sample.size,
                                 LAYOUT.sample.size))
    end
    return (channel or "?") .. " x" .. count
  end
  tree:add_proto_expert_info(TE.body, "message type " .. mtype .. " is not one the course knows")
  return nil
end

local function dissect_telemetry(tvb, pinfo, tree)
  local len = tvb:len()
  pinfo.cols.protocol = "VS-TELEMETRY"
  local root = tree:add(telemetry, tvb())
  if len < OFFSET.version.offset + OFFSET.version.size then
    root:add_proto_expert_info(TE.short, len .. " bytes; not even a magic and a version")
    pinfo.cols.info = "Telemetry (malformed: too short)"
    return len
  end
  root:add(T.magic, range_of(tvb, 0, OFFSET.magic))
  if range_of(tvb, 0, OFFSET.magic):uint() ~= LAYOUT.magic then
    root:add_proto_expert_info(TE.magic, string.format("magic 0x%04x, expected 0x%04x",
      range_of(tvb, 0, OFFSET.magic):uint(), LAYOUT.magic))
    pinfo.cols.info = "Telemetry (malformed: bad magic)"
    return len
  end
  local version = range_of(tvb, 0, OFFSET.version):uint()
  root:add(T.version, range_of(tvb, 0, OFFSET.version))
  -- the version before anything else: another version's layout is not this one
  if version ~= LAYOUT.version then
    root:add_proto_expert_info(TE.version, string.format(
      "version %d; this dissector reads version %d (regenerate it: python -m vitalsim.wireshark)",
      version, LAYOUT.version))
    pinfo.cols.info = "Telemetry version " .. version .. " (unknown)"
    return len
  end
  if len < LAYOUT.header_size then
    root:add_proto_expert_info(TE.short, string.format("%d bytes, a header needs %d", len,
                                                       LAYOUT.header_size))
    pinfo.cols.info = "Telemetry (malformed: shorter than a header)"
    return len
  end
  local value = {}
  for _, spec in ipairs(LAYOUT.header) do
    if spec.name ~= "magic" and spec.name ~= "version" then
      local item = root:add(T[spec.name], range_of(tvb, 0, spec))
      if spec.name == "flags" then
        for _, bit in ipairs(FLAG_BITS) do item:add(bit, range_of(tvb, 0, spec)) end
      elseif spec.name == "sent_at_us" or spec.name == "boot_id" then
        local us = range_of(tvb, 0, spec):uint64()
        if us:tonumber() > 0 then item:append_text(" (" .. utc(us) .. ")") end
      end
    end
    value[spec.name] = range_of(tvb, 0, spec)
  end
  local mtype = value.type:uint()
  local body_len = value.body_len:uint()
  local tag_len = 0
  if value.key_id:uint() ~= 0 then tag_len = LAYOUT.tag_len end
  local expected = LAYOUT.header_size + body_len + tag_len
  if len ~= expected then
    root:add_proto_expert_info(TE.length, string.format(
      "%d bytes, the header says %d (body %d, tag %d)", len, expected, body_len, tag_len))
  end
  if len > LAYOUT.max_datagram then
    root:add_proto_expert_info(TE.length, string.format(
      "%d bytes, above the bound of %d", len, LAYOUT.max_datagram))
  end

  local seq = value.seq:uint()
  local verdict = sequence(pinfo, value.device_id:uint(), tostring(value.boot_id:uint64()), seq)
  if verdict.last ~= nil then
    local gap = root:add(T.gap, verdict.gap)
    gap:set_generated()
    if verdict.gap > 0 then
      gap:add_proto_expert_info(TE.gap, string.format(
        "seq %d after %d: %d datagram(s) of this device missing (%d..%d)", seq, verdict.last,
        verdict.gap, (verdict.last + 1) % TWO_32, (seq - 1) % TWO_32))
    elseif verdict.back then
      gap:add_proto_expert_info(TE.back, string.format(
        "seq %d after %d: a duplicate, or late", seq, verdict.last))
    end
  end

  local available = math.max(0, math.min(body_len, len - LAYOUT.header_size))
  local summary = dissect_body(tvb, pinfo, root, mtype, body_len, available)
  if tag_len > 0 and len >= expected then
    root:add(T.tag, tvb(LAYOUT.header_size + body_len, tag_len))
  end
  local info = string.format("%s bed %d device %d seq %d", LAYOUT.types[mtype] or "?",
                             value.bed:uint(), value.device_id:uint(), seq)
  if summary then info = info .. " " .. summary end
  if verdict.gap > 0 then info = info .. " [" .. verdict.gap .. " missing before]" end
  pinfo.cols.info = info
  root:append_text(", " .. info)
  return len
end

function telemetry.dissector(tvb, pinfo, tree)
  return dissect_telemetry(tvb, pinfo, tree)
end

-- ours: the magic, and a version byte (any, so that an unknown version is named, not ignored)
local function telemetry_heuristic(tvb, pinfo, tree)
  if tvb:len() < OFFSET.version.offset + OFFSET.version.size then return false end
  if range_of(tvb, 0, OFFSET.magic):uint() ~= LAYOUT.magic then return false end
  local version = range_of(tvb, 0, OFFSET.version):uint()
  if version == 0 or version > 15 then return false end
  dissect_telemetry(tvb, pinfo, tree)
  return true
end

---------------------------------------------------------------------------------------------
-- Alarm channel: frames over a TCP byte stream, reassembled by Wireshark's TCP
---------------------------------------------------------------------------------------------

local LENGTH_SIZE = 4

local function dissect_frame(tvb, pinfo, tree, offset, length)
  local ftype = tvb(offset + LENGTH_SIZE, 1):uint()
  local name = LAYOUT.frame_types[ftype]
  local body_range = nil
  if length > 1 then body_range = tvb(offset + LAYOUT.frame_head, length - 1) end
  local body = ""
  if body_range then body = body_range:string(ENC_UTF_8) end
  local label = name or ("type " .. ftype)
  local id = body:match('"alarm_id":"([^"]*)"')
  if id then label = label .. " " .. id end
  local frame = tree:add(alarm, tvb(offset, LENGTH_SIZE + length), "Alarm frame: " .. label)
  frame:add(A.length, tvb(offset, LENGTH_SIZE))
  local type_item = frame:add(A.type, tvb(offset + LENGTH_SIZE, 1))
  if name == nil then
    type_item:add_proto_expert_info(AE.type, "frame type " .. ftype .. " is not one of 1.."
                                    .. #LAYOUT.frame_types)
  end
  if body_range then
    local body_item = frame:add(A.body, body_range, body)
    if body:sub(1, 1) ~= "{" then
      body_item:add_proto_expert_info(AE.body, "a frame's body is a JSON object")
    elseif json then
      json:call(body_range:tvb(), pinfo, frame)
    end
  else
    frame:add_proto_expert_info(AE.body, "a frame with no body")
  end
  return label
end

local function dissect_alarm(tvb, pinfo, tree)
  local total = tvb:len()
  local offset = 0
  local labels = {}
  while offset < total do
    local left = total - offset
    if left < LENGTH_SIZE then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      break
    end
    local length = tvb(offset, LENGTH_SIZE):uint()
    if length == 0 or length > LAYOUT.max_frame then
      local bad = tree:add(alarm, tvb(offset), "Alarm frame: length out of bound")
      local item = bad:add(A.length, tvb(offset, LENGTH_SIZE))
      item:add_proto_expert_info(AE.length, string.format(
        "frame length %d is outside 1..%d; the receiver closes the connection, and the rest "
        .. "is not framed", length, LAYOUT.max_frame))
      labels[#labels + 1] = "bad length " .. length
      offset = total
      break
    end
    if left < LENGTH_SIZE + length then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = LENGTH_SIZE + length - left
      break
    end
    labels[#labels + 1] = dissect_frame(tvb, pinfo, tree, offset, length)
    offset = offset + LENGTH_SIZE + length
  end
  if #labels > 0 then
    pinfo.cols.protocol = "VS-ALARM"
    pinfo.cols.info = table.concat(labels, ", ")
  end
  return total
end

function alarm.dissector(tvb, pinfo, tree)
  return dissect_alarm(tvb, pinfo, tree)
end

-- ours: a length within the bound, a known frame type, and a body that opens a JSON object
local function alarm_heuristic(tvb, pinfo, tree)
  if tvb:len() < LAYOUT.frame_head + 1 then return false end
  local length = tvb(0, LENGTH_SIZE):uint()
  if length < 2 or length > LAYOUT.max_frame then return false end
  if LAYOUT.frame_types[tvb(LENGTH_SIZE, 1):uint()] == nil then return false end
  if tvb(LAYOUT.frame_head, 1):uint() ~= string.byte("{") then return false end
  pinfo.conversation = alarm
  dissect_alarm(tvb, pinfo, tree)
  return true
end

DissectorTable.get("udp.port"):add(LAYOUT.telemetry_port, telemetry)
DissectorTable.get("tcp.port"):add(LAYOUT.alarm_port, alarm)
telemetry:register_heuristic("udp", telemetry_heuristic)
alarm:register_heuristic("tcp", alarm_heuristic)
