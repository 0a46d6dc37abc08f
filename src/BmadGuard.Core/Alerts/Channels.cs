using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Mail;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Monitoring;

namespace BmadGuard.Core.Alerts
{
    /// <summary>Somewhere alerts go. <see cref="Name"/> is safe to print (no secret in it).</summary>
    public interface IAlertChannel
    {
        string Name { get; }

        /// <summary>One delivery attempt; throws on failure (the dispatcher retries).</summary>
        Task SendAsync(Alert alert, CancellationToken cancellationToken);
    }

    internal static class AlertHttp
    {
        // One client for the process: sockets are pooled. Time limits come from the dispatcher's pipeline.
        public static readonly HttpClient Client = new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };

        public static async Task PostJsonAsync(string url, byte[] body, CancellationToken ct)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            using var response = await Client.PostAsync(url, content, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                // The status only: the URL (a secret) is never part of the message.
                throw new HttpRequestException($"the server answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }
        }

        public static byte[] Json(Action<Utf8JsonWriter> write)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                write(w);
            }

            return buffer.ToArray();
        }
    }

    /// <summary>A Slack incoming webhook: POST <c>{"text": "..."}</c>.</summary>
    public sealed class SlackChannel : IAlertChannel
    {
        private readonly string _url;

        public SlackChannel(string url)
        {
            _url = url;
            Name = "slack " + Redactor.DescribeUrl(url);
        }

        public string Name { get; }

        public Task SendAsync(Alert alert, CancellationToken cancellationToken)
            => AlertHttp.PostJsonAsync(_url, AlertHttp.Json(w =>
            {
                w.WriteStartObject();
                w.WriteString("text", alert.FullText);
                w.WriteEndObject();
            }), cancellationToken);
    }

    /// <summary>A generic JSON webhook: POST the alert's fields.</summary>
    public sealed class WebhookChannel : IAlertChannel
    {
        private readonly string _url;

        public WebhookChannel(string url)
        {
            _url = url;
            Name = "webhook " + Redactor.DescribeUrl(url);
        }

        public string Name { get; }

        public Task SendAsync(Alert alert, CancellationToken cancellationToken)
            => AlertHttp.PostJsonAsync(_url, AlertHttp.Json(w =>
            {
                w.WriteStartObject();
                w.WriteString("source", "bmadguard");
                w.WriteString("kind", alert.Kind.ToString().ToLowerInvariant());
                w.WriteString("severity", alert.Severity.ToString().ToLowerInvariant());
                w.WriteString("key", alert.Key);
                w.WriteString("title", alert.Title);
                w.WriteString("text", alert.Text);
                w.WriteString("target", alert.Target);
                w.WriteString("host", alert.Host);
                w.WriteString("time", alert.Time.ToString("o", CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }), cancellationToken);
    }

    /// <summary>Email over SMTP with System.Net.Mail (MailKit is not on our feed).</summary>
    public sealed class SmtpChannel : IAlertChannel
    {
        private readonly SmtpSettings _settings;
        private readonly TimeSpan _timeout;

        public SmtpChannel(SmtpSettings settings, TimeSpan timeout)
        {
            _settings = settings;
            _timeout = timeout;
            Name = $"email smtp://{settings.Host}:{settings.Port} to {string.Join(",", settings.To)}";
        }

        public string Name { get; }

        public Task SendAsync(Alert alert, CancellationToken cancellationToken)
            => Task.Run(() =>
            {
                cancellationToken.ThrowIfCancellationRequested();
#pragma warning disable SYSLIB0014 // SmtpClient is obsolete in favour of MailKit, which is not available to us
                using var client = new SmtpClient(_settings.Host, _settings.Port)
                {
                    EnableSsl = _settings.EnableSsl,
                    DeliveryMethod = SmtpDeliveryMethod.Network,
                    Timeout = (int)Math.Max(1000, _timeout.TotalMilliseconds),
                };
#pragma warning restore SYSLIB0014
                string? password = _settings.ResolvePassword();
                if (!string.IsNullOrEmpty(_settings.Username))
                {
                    client.Credentials = new NetworkCredential(_settings.Username, password);
                }

                using var message = new MailMessage { From = new MailAddress(_settings.From), Subject = alert.Headline, Body = alert.FullText, BodyEncoding = Encoding.UTF8, SubjectEncoding = Encoding.UTF8 };
                foreach (var to in _settings.To)
                {
                    message.To.Add(to);
                }

                message.Headers.Add("X-BmadGuard-Key", alert.Key);
                message.Headers.Add("X-BmadGuard-Severity", alert.Severity.ToString());
                using (cancellationToken.Register(() => client.SendAsyncCancel()))
                {
                    client.Send(message);
                }
            }, cancellationToken);
    }
}
