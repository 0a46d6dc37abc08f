using System;
using System.Globalization;
using System.Text.RegularExpressions;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>Durations as people write them: <c>500ms</c>, <c>5s</c>, <c>2m</c>, <c>1h</c>, <c>1d</c>, or a bare number of seconds.</summary>
    public static class Durations
    {
        private static readonly Regex Pattern = new Regex(@"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        public static bool TryParse(string? text, out TimeSpan value)
        {
            value = TimeSpan.Zero;
            if (text == null)
            {
                return false;
            }

            var m = Pattern.Match(text);
            if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double n))
            {
                return false;
            }

            string unit = m.Groups[2].Success ? m.Groups[2].Value.ToLowerInvariant() : "s";
            double ms = unit switch
            {
                "ms" => n,
                "s" => n * 1000,
                "m" => n * 60_000,
                "h" => n * 3_600_000,
                _ => n * 86_400_000,
            };
            if (ms > TimeSpan.FromDays(3650).TotalMilliseconds)
            {
                return false;
            }

            value = TimeSpan.FromMilliseconds(ms);
            return true;
        }

        /// <summary>Parses or throws InvalidConfiguration naming the setting (never echoing secrets: durations are not secret).</summary>
        public static TimeSpan Parse(string? text, string setting)
        {
            if (!TryParse(text, out var value))
            {
                throw new BmadGuardException(ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput,
                    $"{setting} '{text}' is not a duration: write e.g. 500ms, 5s, 2m, 1h or 1d.");
            }

            return value;
        }

        public static string Format(TimeSpan t)
        {
            if (t.TotalMilliseconds < 1000 || t.Milliseconds != 0)
            {
                return ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
            }

            if (t.TotalSeconds < 60 || t.Seconds != 0)
            {
                return ((long)t.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s";
            }

            if (t.TotalMinutes < 60 || t.Minutes != 0)
            {
                return ((long)t.TotalMinutes).ToString(CultureInfo.InvariantCulture) + "m";
            }

            return ((long)t.TotalHours).ToString(CultureInfo.InvariantCulture) + "h";
        }
    }
}
