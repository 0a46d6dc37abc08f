using System;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Globalization;
using System.Numerics;
using System.Text.Json;

namespace BmadGuard.Core.Events
{
    /// <summary>
    /// Turns an event's data JSON into plain .NET objects that a host without System.Text.Json can use:
    /// objects become <see cref="OrderedDictionary"/> (key order kept, keys case-insensitive like a
    /// PowerShell <c>[ordered]@{}</c> unless two keys differ only by case), arrays become <c>object?[]</c>,
    /// numbers <see cref="long"/> (integers that fit), <see cref="BigInteger"/> (larger integers) or
    /// <see cref="double"/>, and strings, booleans and null themselves. Strings are never reinterpreted
    /// as dates: what was stored is what comes back.
    /// </summary>
    /// <remarks>
    /// It lives in Core, not in the PowerShell assembly, so the cmdlets never touch System.Text.Json
    /// themselves: the module loads Core and System.Text.Json into an isolated load context.
    /// </remarks>
    public static class EventDataReader
    {
        /// <summary>Converts a JSON object (an event's <see cref="EventRecord.DataJson"/>) to an ordered dictionary.</summary>
        public static OrderedDictionary ToDictionary(string dataJson)
        {
            if (dataJson == null)
            {
                throw new ArgumentNullException(nameof(dataJson));
            }

            using var doc = JsonDocument.Parse(dataJson, new JsonDocumentOptions { MaxDepth = 1024 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new BmadGuardException(ErrorCodes.DataNotObject, FailureKind.InvalidInput, "Event data must be a JSON object.");
            }

            return ReadObject(doc.RootElement);
        }

        private static object? ReadValue(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    return ReadObject(e);
                case JsonValueKind.Array:
                    var items = new List<object?>(e.GetArrayLength());
                    foreach (var item in e.EnumerateArray())
                    {
                        items.Add(ReadValue(item));
                    }

                    return items.ToArray();
                case JsonValueKind.String:
                    return e.GetString();
                case JsonValueKind.Number:
                    return ReadNumber(e);
                case JsonValueKind.True:
                    return true;
                case JsonValueKind.False:
                    return false;
                default:
                    return null;
            }
        }

        private static object ReadNumber(JsonElement e)
        {
            if (e.TryGetInt64(out long l))
            {
                return l;
            }

            string raw = e.GetRawText();
            if (raw.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 && BigInteger.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big))
            {
                return big;
            }

            return e.GetDouble();
        }

        private static OrderedDictionary ReadObject(JsonElement e)
        {
            var pairs = new List<KeyValuePair<string, object?>>();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            bool caseClash = false;
            foreach (var p in e.EnumerateObject())
            {
                caseClash |= !seen.Add(p.Name);
                pairs.Add(new KeyValuePair<string, object?>(p.Name, ReadValue(p.Value)));
            }

            // Stored data never has the same key twice (the serializer refuses it), but "id" and "Id" are
            // different JSON keys: keep both rather than lose one, at the price of case-sensitive lookups.
            var dict = caseClash ? new OrderedDictionary(pairs.Count, StringComparer.Ordinal) : new OrderedDictionary(pairs.Count, StringComparer.OrdinalIgnoreCase);
            foreach (var pair in pairs)
            {
                dict[pair.Key] = pair.Value;
            }

            return dict;
        }
    }
}
