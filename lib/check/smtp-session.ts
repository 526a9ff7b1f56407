// A minimal SMTP client session for probing an MX host: greeting, EHLO, STARTTLS, MAIL and RCPT, never
// DATA. Hand-written on purpose: the well-kept clients (nodemailer's SMTPConnection) expose only
// whole deliveries, and a probe needs each reply code (RCPT accepted or refused) without sending mail.
import { Socket } from "node:net";
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from "node:tls";
import { trustedRoots } from "./trust";

export interface Reply {
    code: number;
    text: string;
}

export interface TlsInfo {
    protocol: string | null;
    /** Verified against the trust store (and --ca-file): chain and name. */
    authorized: boolean;
    /** Node's reason when not authorized, e.g. DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID. */
    error: string | null;
    subject: string;
    issuer: string;
    validTo: string;
    selfSigned: boolean;
}

export class SmtpSession {
    private socket: Socket | TLSSocket;
    private buffer = "";
    private waiting: ((line: string | Error) => void) | null = null;
    private lines: string[] = [];
    private closedWith: Error | null = null;

    private constructor(socket: Socket, private readonly timeoutMs: number) {
        this.socket = socket;
        this.listen(socket);
    }

    static open(address: string, port: number, timeoutMs: number): Promise<SmtpSession> {
        return new Promise((resolve, reject) => {
            const socket = new Socket();
            const timer = setTimeout(() => {
                socket.destroy();
                reject(new Error(`no TCP connection within ${timeoutMs} ms`));
            }, timeoutMs);
            socket.once("error", (error) => {
                clearTimeout(timer);
                reject(error);
            });
            socket.connect(port, address, () => {
                clearTimeout(timer);
                socket.removeAllListeners("error");
                resolve(new SmtpSession(socket, timeoutMs));
            });
        });
    }

    private listen(socket: Socket | TLSSocket): void {
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => {
            this.buffer += chunk;
            let index: number;
            while ((index = this.buffer.indexOf("\n")) >= 0) {
                this.lines.push(this.buffer.slice(0, index).replace(/\r$/, ""));
                this.buffer = this.buffer.slice(index + 1);
            }
            this.deliver();
        });
        const closed = (error?: Error) => {
            this.closedWith = error ?? new Error("the server closed the connection");
            this.deliver();
        };
        socket.on("error", closed);
        socket.on("close", () => closed());
    }

    private deliver(): void {
        if (this.waiting === null) return;
        const take = this.waiting;
        if (this.lines.length > 0) {
            this.waiting = null;
            take(this.lines.shift()!);
        } else if (this.closedWith !== null) {
            this.waiting = null;
            take(this.closedWith);
        }
    }

    private nextLine(): Promise<string> {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.waiting = null;
                reject(new Error(`no reply within ${this.timeoutMs} ms`));
            }, this.timeoutMs);
            this.waiting = (line) => {
                clearTimeout(timer);
                if (line instanceof Error) reject(line);
                else resolve(line);
            };
            this.deliver();
        });
    }

    /** One reply, multi-line ones joined ("250-..." lines up to "250 ..."). */
    async reply(): Promise<Reply> {
        const text: string[] = [];
        for (;;) {
            const line = await this.nextLine();
            const match = /^(\d{3})([ -])(.*)$/.exec(line);
            if (match === null) throw new Error(`not an SMTP reply: ${line.slice(0, 80)}`);
            text.push(match[3]);
            if (match[2] === " ") return { code: Number(match[1]), text: text.join("\n") };
        }
    }

    async command(line: string): Promise<Reply> {
        this.socket.write(`${line}\r\n`);
        return this.reply();
    }

    /** After a 220 to STARTTLS: the TLS handshake, accepting any certificate so it can be described; `ca` is added to the public roots. */
    upgrade(servername: string, ca: string[] | undefined): Promise<TlsInfo> {
        const plain = this.socket as Socket;
        plain.removeAllListeners("data");
        plain.removeAllListeners("close");
        plain.removeAllListeners("error");
        return new Promise((resolve, reject) => {
            const roots = trustedRoots(ca);
            const secure = tlsConnect({ socket: plain, servername, rejectUnauthorized: false, ...(roots ? { ca: roots } : {}) });
            const timer = setTimeout(() => {
                secure.destroy();
                reject(new Error(`no TLS handshake within ${this.timeoutMs} ms`));
            }, this.timeoutMs);
            secure.once("error", (error) => {
                clearTimeout(timer);
                reject(error);
            });
            secure.once("secureConnect", () => {
                clearTimeout(timer);
                secure.removeAllListeners("error");
                this.socket = secure;
                this.listen(secure);
                const cert: PeerCertificate = secure.getPeerCertificate();
                const error = secure.authorizationError === null ? null : String((secure.authorizationError as Error & { code?: string }).code ?? secure.authorizationError);
                const subject = [cert.subject?.CN ?? ""].flat().join(", ");
                const issuer = [cert.issuer?.CN ?? ""].flat().join(", ");
                resolve({
                    protocol: secure.getProtocol(),
                    authorized: secure.authorized,
                    error,
                    subject,
                    issuer,
                    validTo: cert.valid_to ?? "",
                    selfSigned: error === "DEPTH_ZERO_SELF_SIGNED_CERT" || error === "SELF_SIGNED_CERT_IN_CHAIN",
                });
            });
        });
    }

    close(): void {
        try {
            this.socket.write("QUIT\r\n");
        } catch {
            // already gone
        }
        this.socket.destroy();
    }
}
