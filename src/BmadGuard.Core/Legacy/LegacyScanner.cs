using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BmadGuard.Core.Legacy
{
    /// <summary>One event of a legacy bus file: <c>{"timestamp": "…", "event": "…", "data": {…}}</c>, with its exact bytes.</summary>
    public sealed class LegacyEvent
    {
        internal LegacyEvent(int index, long offset, byte[] json, string timestamp, string eventName, string dataJson, bool dataIsObject, string? incomplete = null)
        {
            Index = index;
            Offset = offset;
            Json = json;
            Timestamp = timestamp;
            Event = eventName;
            DataJson = dataJson;
            DataIsObject = dataIsObject;
            Incomplete = incomplete;
        }

        /// <summary>
        /// The store type an import gives an element that has no usable <c>"event"</c> (e.g. <c>{"timestamp": …,
        /// "data": {"status": "completed"}}</c>, which real bus files hold and the agents' bus returns).
        /// </summary>
        public const string UntypedType = "legacy.untyped";

        /// <summary>
        /// Null for a whole event; else what the element lacks (it is a complete JSON object without every field the
        /// bus writes, e.g. no "event"). Such elements are kept by repair and reported as warnings.
        /// </summary>
        public string? Incomplete { get; }

        /// <summary>Position among the events read (0-based).</summary>
        public int Index { get; }

        /// <summary>Byte offset of the event's '{' in the file.</summary>
        public long Offset { get; }

        /// <summary>The event object's bytes exactly as they are in the file.</summary>
        public byte[] Json { get; }

        /// <summary>The timestamp text as written (legacy agents write naive local ISO times, e.g. 2025-07-27T00:17:39.983220).</summary>
        public string Timestamp { get; }

        public string Event { get; }

        public string DataJson { get; }

        public bool DataIsObject { get; }

        /// <summary>Null when the element has the legacy event shape, else what is wrong with it.</summary>
        internal static string? Problem(JsonElement e, out bool dataNotObject)
        {
            dataNotObject = false;
            if (e.ValueKind != JsonValueKind.Object)
            {
                return $"is {JsonFileVerifier.Kind(e)}, not an object with \"timestamp\", \"event\" and \"data\"";
            }

            if (!e.TryGetProperty("timestamp", out var ts))
            {
                return "has no \"timestamp\"";
            }

            if (ts.ValueKind != JsonValueKind.String || !TryParseTimestamp(ts.GetString()!, TimeZoneInfo.Utc, out _))
            {
                return $"has a \"timestamp\" that is not an ISO 8601 time ({ts.GetRawText()})";
            }

            if (!e.TryGetProperty("event", out var ev))
            {
                return "has no \"event\" (its type)";
            }

            if (ev.ValueKind != JsonValueKind.String || ev.GetString()!.Length == 0)
            {
                return $"has an \"event\" that is not a non-empty string ({ev.GetRawText()})";
            }

            if (!e.TryGetProperty("data", out var data))
            {
                return "has no \"data\"";
            }

            dataNotObject = data.ValueKind != JsonValueKind.Object;
            return null;
        }

        /// <summary>
        /// Parses a legacy timestamp. Legacy agents write Python's naive <c>datetime.isoformat()</c>: no offset.
        /// Such times are read in <paramref name="naiveZone"/> (UTC unless told otherwise); times with an offset keep it.
        /// </summary>
        public static bool TryParseTimestamp(string text, TimeZoneInfo naiveZone, out DateTimeOffset value)
        {
            value = default;
            if (!DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var dt) || text.Length < 10 || text[4] != '-')
            {
                return false;
            }

            if (dt.Kind == DateTimeKind.Unspecified)
            {
                var offset = naiveZone.GetUtcOffset(dt);
                value = new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Unspecified), offset);
            }
            else
            {
                return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out value);
            }

            return true;
        }

        /// <summary>
        /// The event's deterministic store id: <c>legacy-</c> + the first 32 hex digits of SHA-256 over the
        /// event's compact JSON and its occurrence number among identical events. Reformatting the file,
        /// losing or restoring other events does not change it; two identical events still get two ids.
        /// </summary>
        internal static string IdFor(string canonicalJson, int occurrence)
        {
            using var sha = SHA256.Create();
            byte[] hash = sha.ComputeHash(Encoding.UTF8.GetBytes(occurrence.ToString(CultureInfo.InvariantCulture) + "\n" + canonicalJson));
            var sb = new StringBuilder("legacy-", 39);
            for (int i = 0; i < 16; i++)
            {
                sb.Append(hash[i].ToString("x2", CultureInfo.InvariantCulture));
            }

            return sb.ToString();
        }

        internal string CanonicalJson()
        {
            using var doc = JsonDocument.Parse(Json, new JsonDocumentOptions { MaxDepth = 1000 });
            var buffer = new MemoryStream(Json.Length);
            using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                doc.RootElement.WriteTo(w);
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }
    }

    /// <summary>A stretch of a legacy file that held no recoverable event.</summary>
    public readonly struct DamagedRegion
    {
        public DamagedRegion(long offset, long length, string reason)
        {
            Offset = offset;
            Length = length;
            Reason = reason;
        }

        public long Offset { get; }
        public long Length { get; }
        public string Reason { get; }
    }

    /// <summary>What the tolerant scan of a legacy file found.</summary>
    public sealed class LegacyScanResult
    {
        internal LegacyScanResult(IReadOnlyList<LegacyEvent> events, IReadOnlyList<DamagedRegion> damage, bool clean, long length)
        {
            Events = events;
            Damage = damage;
            Clean = clean;
            Length = length;
        }

        /// <summary>Every complete, well-formed event, in file order.</summary>
        public IReadOnlyList<LegacyEvent> Events { get; }

        /// <summary>Stretches of the file that held no recoverable event (in order). Empty when the file is intact.</summary>
        public IReadOnlyList<DamagedRegion> Damage { get; }

        /// <summary>True when the file is a complete legacy bus document with every element an event.</summary>
        public bool Clean { get; }

        public long Length { get; }

        /// <summary>Byte offset where the damage starts (the first damaged region), or null.</summary>
        public long? DamageOffset => Damage.Count > 0 ? Damage[0].Offset : (long?)null;
    }

    /// <summary>
    /// A tolerant scanner for legacy bus files: walks <c>{"events":[ … ]}</c> with Utf8JsonReader one event
    /// object at a time, so a file cut anywhere (e.g. ending in <c>"data": </c>) yields every event that was
    /// complete before the cut. After bytes that are not JSON it resynchronizes on the next object that has
    /// the event shape and is followed by ',' or ']' (so an event-like object nested in data is not taken
    /// for a top-level event).
    /// </summary>
    public static class LegacyScanner
    {
        public static LegacyScanResult Scan(byte[] bytes, System.Threading.CancellationToken cancellationToken = default)
        {
            var events = new List<LegacyEvent>();
            var damage = new List<DamagedRegion>();
            int pos = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            bool clean = false;

            int arrayStart = FindEventsArray(bytes, pos);
            long damageStart = -1;
            string damageReason = "";
            if (arrayStart < 0)
            {
                damageStart = pos;
                damageReason = "the file does not start with {\"events\": [";
                pos = Resync(bytes, pos, events);
            }
            else
            {
                pos = arrayStart;
            }

            bool expectElement = true;
            bool any = false;
            while (pos >= 0)
            {
                pos = SkipWhitespace(bytes, pos);
                if (pos >= bytes.Length)
                {
                    if (damageStart < 0)
                    {
                        damageStart = pos;
                        damageReason = "the file ends before the events array is closed (truncated)";
                    }

                    break;
                }

                byte b = bytes[pos];
                if (damageStart >= 0 && (b == (byte)'{' && expectElement))
                {
                    // resynchronized: close the damaged region
                    damage.Add(new DamagedRegion(damageStart, pos - damageStart, damageReason));
                    damageStart = -1;
                }

                if (b == (byte)']' && (!expectElement || !any) && damageStart < 0)
                {
                    int end = SkipWhitespace(bytes, pos + 1);
                    if (end < bytes.Length && bytes[end] == (byte)'}' && SkipWhitespace(bytes, end + 1) >= bytes.Length)
                    {
                        clean = damage.Count == 0 && arrayStart >= 0;
                        break;
                    }

                    if (end >= bytes.Length)
                    {
                        damageStart = end;
                        damageReason = "the file ends after the events array without the closing '}' (truncated)";
                    }
                    else
                    {
                        damageStart = end;
                        damageReason = "unexpected bytes after the events array";
                    }

                    break;
                }

                if (b == (byte)',' && !expectElement && damageStart < 0)
                {
                    expectElement = true;
                    pos++;
                    continue;
                }

                if (b == (byte)'{' && expectElement)
                {
                    if ((events.Count & 1023) == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }

                    var outcome = TryReadObject(bytes, pos, out int end, out long errorAt);
                    if (outcome == ReadOutcome.Complete)
                    {
                        var ev = TryEvent(bytes, pos, end, events.Count, strict: false);
                        if (ev != null)
                        {
                            events.Add(ev);
                            any = true;
                            expectElement = false;
                            pos = end;
                            continue;
                        }

                        damageStart = pos;
                        damageReason = "an element of the events array is not an event (not an object, or it holds bytes that are not valid UTF-8 or a string that is not valid Unicode)";
                        pos = Resync(bytes, end, events);
                        expectElement = true;
                        continue;
                    }

                    damageStart = pos;
                    if (outcome == ReadOutcome.Incomplete)
                    {
                        // Ran out of bytes inside this event: nothing after it can be complete.
                        damageReason = "the file ends in the middle of an event (truncated)";
                        break;
                    }

                    damageReason = $"an event is not valid JSON (error at byte {errorAt})";
                    pos = Resync(bytes, pos + 1, events);
                    expectElement = true;
                    continue;
                }

                damageStart = pos;
                damageReason = $"unexpected byte 0x{b:x2} where an event, ',' or ']' should be";
                pos = Resync(bytes, pos + 1, events);
                expectElement = true;
            }

            if (damageStart >= 0)
            {
                damage.Add(new DamagedRegion(damageStart, bytes.Length - damageStart, damageReason));
            }

            return new LegacyScanResult(events, damage, clean && damage.Count == 0, bytes.Length);
        }

        /// <summary>Offsets of the events array's elements in a valid file (for line/column in reports).</summary>
        internal static List<long> ElementOffsets(byte[] bytes, int bom)
        {
            var result = new List<long>();
            int pos = FindEventsArray(bytes, bom);
            while (pos >= 0 && pos < bytes.Length)
            {
                pos = SkipWhitespace(bytes, pos);
                if (pos >= bytes.Length || bytes[pos] == (byte)']')
                {
                    break;
                }

                if (bytes[pos] == (byte)',')
                {
                    pos++;
                    continue;
                }

                result.Add(pos);
                var reader = new Utf8JsonReader(new ReadOnlySpan<byte>(bytes, pos, bytes.Length - pos), isFinalBlock: false, default);
                try
                {
                    if (!reader.Read() || !reader.TrySkip())
                    {
                        break;
                    }
                }
                catch (JsonException)
                {
                    break;
                }

                pos += (int)reader.BytesConsumed;
            }

            return result;
        }

        /// <summary>Offset just after the '[' of the top-level "events" array, or -1.</summary>
        private static int FindEventsArray(byte[] bytes, int start)
        {
            var reader = new Utf8JsonReader(new ReadOnlySpan<byte>(bytes, start, bytes.Length - start), isFinalBlock: false, default);
            try
            {
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    return -1;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    bool isEvents = reader.ValueTextEquals("events");
                    if (!reader.Read())
                    {
                        return -1;
                    }

                    if (isEvents)
                    {
                        return reader.TokenType == JsonTokenType.StartArray ? start + (int)reader.BytesConsumed : -1;
                    }

                    if (!reader.TrySkip())
                    {
                        return -1;
                    }
                }
            }
            catch (JsonException)
            {
            }

            return -1;
        }

        private enum ReadOutcome
        {
            Complete,
            Incomplete,
            Invalid,
        }

        /// <summary>Reads one JSON object starting at <paramref name="start"/> (which holds '{').</summary>
        private static ReadOutcome TryReadObject(byte[] bytes, int start, out int end, out long errorAt)
        {
            end = start;
            errorAt = -1;
            var span = new ReadOnlySpan<byte>(bytes, start, bytes.Length - start);
            var reader = new Utf8JsonReader(span, isFinalBlock: false, new JsonReaderState(new JsonReaderOptions { MaxDepth = 1000 }));
            try
            {
                if (!reader.Read() || !reader.TrySkip())
                {
                    return ReadOutcome.Incomplete;
                }

                end = start + (int)reader.BytesConsumed;
                return ReadOutcome.Complete;
            }
            catch (JsonException ex)
            {
                errorAt = start + Integrity.TextPosition.ToOffset(span, ex.LineNumber ?? 0, ex.BytePositionInLine ?? 0);
                return ReadOutcome.Invalid;
            }
        }

        /// <summary>
        /// The element at [start, end) as an event, or null when it is not one. <paramref name="strict"/> (resynchronizing
        /// after damage): only an object with the whole event shape. Otherwise any complete JSON object whose strings all
        /// decode is kept, with what it lacks in <see cref="LegacyEvent.Incomplete"/>. Bad bytes (invalid UTF-8, a lone
        /// surrogate escape that Python loads but that is not Unicode) make it null: a damaged element, never a crash.
        /// </summary>
        private static LegacyEvent? TryEvent(byte[] bytes, int start, int end, int index, bool strict = true)
        {
            var json = new byte[end - start];
            Buffer.BlockCopy(bytes, start, json, 0, json.Length);
            try
            {
                using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 1000 });
                var e = doc.RootElement;
                if (e.ValueKind != JsonValueKind.Object || !StringsDecode(e))
                {
                    return null;
                }

                string? problem = LegacyEvent.Problem(e, out bool dataNotObject);
                if (problem == null)
                {
                    return new LegacyEvent(index, start, json, e.GetProperty("timestamp").GetString()!, e.GetProperty("event").GetString()!,
                        e.GetProperty("data").GetRawText(), !dataNotObject);
                }

                if (strict)
                {
                    return null;
                }

                string timestamp = e.TryGetProperty("timestamp", out var ts) && ts.ValueKind == JsonValueKind.String ? ts.GetString()! : "";
                string eventName = e.TryGetProperty("event", out var ev) && ev.ValueKind == JsonValueKind.String ? ev.GetString()! : "";
                bool hasData = e.TryGetProperty("data", out var data);
                // No "data": the whole element is the data, so an import loses nothing of it.
                string dataJson = hasData ? data.GetRawText() : e.GetRawText();
                return new LegacyEvent(index, start, json, timestamp, eventName, dataJson, !hasData || data.ValueKind == JsonValueKind.Object, problem);
            }
            catch (Exception ex) when (ex is JsonException || ex is InvalidOperationException || ex is ArgumentException)
            {
                return null;
            }
        }

        /// <summary>True when every string and property name decodes to valid UTF-16 (no invalid UTF-8, no lone surrogates).</summary>
        internal static bool StringsDecode(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var p in e.EnumerateObject())
                    {
                        if (!ValidText(p.Name) || !StringsDecode(p.Value))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                    {
                        if (!StringsDecode(item))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.String:
                    return ValidText(e.GetString()!);
                default:
                    return true;
            }
        }

        /// <summary>No unpaired surrogate (System.Text.Json decodes an escaped lone surrogate into one).</summary>
        private static bool ValidText(string s)
        {
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (char.IsHighSurrogate(c))
                {
                    if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                    {
                        return false;
                    }

                    i++;
                }
                else if (char.IsLowSurrogate(c))
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>
        /// The next offset from <paramref name="from"/> where a top-level event starts: an object with the event
        /// shape followed by ',' or ']' or the end of the file. -1 when there is none.
        /// </summary>
        private static int Resync(byte[] bytes, int from, List<LegacyEvent> events)
        {
            for (int q = Array.IndexOf(bytes, (byte)'{', Math.Min(from, bytes.Length)); q >= 0; q = Array.IndexOf(bytes, (byte)'{', q + 1))
            {
                if (TryReadObject(bytes, q, out int end, out _) != ReadOutcome.Complete)
                {
                    continue;
                }

                int next = SkipWhitespace(bytes, end);
                if (next < bytes.Length && bytes[next] != (byte)',' && bytes[next] != (byte)']')
                {
                    continue;
                }

                if (TryEvent(bytes, q, end, events.Count) != null)
                {
                    return q;
                }
            }

            return -1;
        }

        private static int SkipWhitespace(byte[] bytes, int pos)
        {
            while (pos < bytes.Length && (bytes[pos] == (byte)' ' || bytes[pos] == (byte)'\n' || bytes[pos] == (byte)'\r' || bytes[pos] == (byte)'\t'))
            {
                pos++;
            }

            return pos;
        }
    }
}
