using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace BmadGuard.Core.Alerts
{
    /// <summary>How bad it is. Escalation moves a persisting problem one step up.</summary>
    public enum AlertSeverity
    {
        Info = 0,
        Warning = 1,
        Error = 2,
        Critical = 3,
    }

    /// <summary>Why an alert is being sent.</summary>
    public enum AlertKind
    {
        /// <summary>A problem seen for the first time (or worse than before).</summary>
        Raised,
        /// <summary>The same problem persisting past the escalation threshold, raised one level higher.</summary>
        Escalated,
        /// <summary>A reminder after the de-duplication window for a problem still there.</summary>
        Reminder,
        /// <summary>The problem is gone.</summary>
        Resolved,
        /// <summary>A hand-sent test (bmadguard alert --test, Send-BmadAlert).</summary>
        Test,
        /// <summary>A hand-sent alert.</summary>
        Manual,
    }

    /// <summary>One alert as every channel sends it. The text never holds a secret (channels are redacted).</summary>
    public sealed class Alert
    {
        public Alert(string key, AlertSeverity severity, AlertKind kind, string title, string text, string target, DateTimeOffset? time = null)
        {
            Key = key;
            Severity = severity;
            Kind = kind;
            Title = title;
            Text = text;
            Target = target;
            Time = time ?? DateTimeOffset.UtcNow;
            Host = Environment.MachineName;
        }

        /// <summary>The problem's identity: the same key is the same problem (de-duplication, escalation, resolution).</summary>
        public string Key { get; }
        public AlertSeverity Severity { get; }
        public AlertKind Kind { get; }
        public string Title { get; }
        public string Text { get; }
        public string Target { get; }
        public DateTimeOffset Time { get; }
        public string Host { get; }

        /// <summary>One line for chat and subjects: <c>[CRITICAL] BmadGuard on host: title</c>.</summary>
        public string Headline
        {
            get
            {
                string tag = Kind == AlertKind.Resolved ? "RESOLVED" : Severity.ToString().ToUpperInvariant();
                string esc = Kind == AlertKind.Escalated ? " (escalated)" : Kind == AlertKind.Test ? " (test)" : "";
                return $"[{tag}] BmadGuard on {Host}: {Title}{esc}";
            }
        }

        public string FullText => $"{Headline}\n{Text}\nTarget: {Target}\nTime: {Time.ToString("o", CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// Removes secrets (webhook URLs, SMTP passwords) from any text before it reaches a log, an error, an event
    /// or an alert. A Slack incoming-webhook URL is a bearer token: whoever has it can post to the channel.
    /// </summary>
    public sealed class Redactor
    {
        public const string Mask = "***";
        private readonly List<string> _secrets = new List<string>();

        public void AddSecret(string? secret)
        {
            if (string.IsNullOrEmpty(secret) || secret!.Length < 4)
            {
                return;
            }

            lock (_secrets)
            {
                Add(secret);
                if (Uri.TryCreate(secret, UriKind.Absolute, out var uri))
                {
                    // HttpClient and friends may print the URL in other shapes: normalised, path only, escaped.
                    Add(uri.ToString());
                    Add(uri.AbsoluteUri);
                    if (uri.PathAndQuery.Length > 1)
                    {
                        Add(uri.PathAndQuery);
                        Add(Uri.UnescapeDataString(uri.PathAndQuery));
                    }

                    Add(Uri.EscapeDataString(secret));
                }

                _secrets.Sort((a, b) => b.Length.CompareTo(a.Length)); // longest first
            }
        }

        private void Add(string s)
        {
            if (s.Length >= 4 && !_secrets.Contains(s))
            {
                _secrets.Add(s);
            }
        }

        public string Redact(string? text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return text ?? "";
            }

            string result = text!;
            lock (_secrets)
            {
                foreach (var s in _secrets)
                {
                    if (result.IndexOf(s, StringComparison.Ordinal) >= 0)
                    {
                        result = result.Replace(s, Mask);
                    }
                }
            }

            return result;
        }

        /// <summary>How a secret URL is shown: scheme, host and port only.</summary>
        public static string DescribeUrl(string url)
            => Uri.TryCreate(url, UriKind.Absolute, out var uri) ? $"{uri.Scheme}://{uri.Host}:{uri.Port}/{Mask}" : Mask;

        public bool HasSecrets
        {
            get
            {
                lock (_secrets)
                {
                    return _secrets.Any();
                }
            }
        }
    }
}
