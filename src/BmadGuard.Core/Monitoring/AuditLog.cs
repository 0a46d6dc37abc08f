using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.Json;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// <c>&lt;store&gt;/audit.jsonl</c>: one JSON object per line for everything the monitor found and did, by
    /// whom (<c>user@host pid N</c>) and how long it took. Append-only; every string passes the
    /// <see cref="Redactor"/> first, so no secret reaches the file.
    /// <code>{"time":"…","action":"damage.detected","target":"…","outcome":"…","message":"…","by":"ops@box pid 4242","durationMs":12.5,"details":{…}}</code>
    /// </summary>
    public sealed class AuditLog
    {
        public const string FileName = "audit.jsonl";
        private readonly object _gate = new object();
        private readonly Redactor _redactor;

        public AuditLog(string store, Redactor? redactor = null)
        {
            Store = store;
            Path = System.IO.Path.Combine(store, FileName);
            _redactor = redactor ?? new Redactor();
        }

        public string Path { get; }

        public string Store { get; }

        /// <summary>Called with every failed write (besides the return value), so the monitor counts and reports each one.</summary>
        public Action<Exception>? Failed { get; set; }

        /// <summary>Who acts: <c>user@host pid N</c>.</summary>
        public static string By { get; } = $"{Environment.UserName}@{Environment.MachineName} pid {Process.GetCurrentProcess().Id}";

        /// <summary>Appends one entry. Never throws: an audit failure is returned so the caller can report it.</summary>
        public Exception? Write(string action, string target, string outcome, string message, TimeSpan? duration = null, IReadOnlyDictionary<string, object?>? details = null)
        {
            try
            {
                var buffer = new MemoryStream(256);
                using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                {
                    w.WriteStartObject();
                    w.WriteString("time", DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteString("action", action);
                    w.WriteString("target", _redactor.Redact(target));
                    w.WriteString("outcome", outcome);
                    w.WriteString("message", _redactor.Redact(message));
                    w.WriteString("by", By);
                    if (duration.HasValue)
                    {
                        w.WriteNumber("durationMs", Math.Round(duration.Value.TotalMilliseconds, 3));
                    }

                    if (details != null && details.Count > 0)
                    {
                        w.WriteStartObject("details");
                        foreach (var kv in details)
                        {
                            JsonValues.Write(w, kv.Key, kv.Value, _redactor);
                        }

                        w.WriteEndObject();
                    }

                    w.WriteEndObject();
                }

                buffer.WriteByte((byte)'\n');
                lock (_gate)
                {
                    // O_APPEND: one write() per entry, so entries from the monitor and from a CLI run at the same
                    // time never interleave inside a line.
                    // Created 0600; never through a link planted at audit.jsonl (StoreFs).
                    using var stream = StoreFs.OpenOrCreate(Store, Path, FileAccess.Write, append: true);
                    stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                    // fsync: the audit log is the record of what was done to the store (a repair, a restore). It
                    // must not lose the entry for an action whose effects on the store are already durable, so the
                    // entry is made durable before the monitor moves on. Entries are rare (actions, not checks).
                    stream.Flush(true);
                }

                return null;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                Failed?.Invoke(ex);
                return ex;
            }
        }

        /// <summary>Reads the entries back (tests, Get-BmadMonitor). A torn last line is skipped.</summary>
        public static IEnumerable<JsonElement> Read(string store)
        {
            string path = System.IO.Path.Combine(store, FileName);
            if (!File.Exists(path))
            {
                yield break;
            }

            foreach (var line in File.ReadAllLines(path))
            {
                JsonElement e;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    e = doc.RootElement.Clone();
                }
                catch (JsonException)
                {
                    continue;
                }

                yield return e;
            }
        }
    }

    internal static class JsonValues
    {
        public static void Write(Utf8JsonWriter w, string name, object? value, Redactor redactor)
        {
            w.WritePropertyName(name);
            WriteValue(w, value, redactor);
        }

        public static void WriteValue(Utf8JsonWriter w, object? value, Redactor redactor)
        {
            switch (value)
            {
                case null: w.WriteNullValue(); break;
                case string s: w.WriteStringValue(redactor.Redact(s)); break;
                case bool b: w.WriteBooleanValue(b); break;
                case int i: w.WriteNumberValue(i); break;
                case long l: w.WriteNumberValue(l); break;
                case double d: w.WriteNumberValue(d); break;
                case TimeSpan t: w.WriteNumberValue(Math.Round(t.TotalMilliseconds, 3)); break;
                case DateTimeOffset dto: w.WriteStringValue(dto.ToString("o", CultureInfo.InvariantCulture)); break;
                case Enum en: w.WriteStringValue(en.ToString()); break;
                case System.Collections.IEnumerable list:
                    w.WriteStartArray();
                    foreach (var item in list)
                    {
                        WriteValue(w, item, redactor);
                    }

                    w.WriteEndArray();
                    break;
                default: w.WriteStringValue(redactor.Redact(value.ToString())); break;
            }
        }
    }
}
